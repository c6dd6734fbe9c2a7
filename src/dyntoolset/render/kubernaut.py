"""The ``kubernaut`` renderer: the V1 ``toolset.json`` the Kubernaut agent reads.

The format is V1's, key for key::

    {
      "tools": [
        {
          "name": "prometheus.monitoring",
          "type": "prometheus",
          "endpoint": "http://prometheus.monitoring.svc.cluster.local:9090",
          "description": "prometheus service in monitoring namespace (type: prometheus)",
          "namespace": "monitoring",
          "metadata": {"detector": "prometheus", "service": "monitoring/prometheus", ...}
        }
      ]
    }

One tool per discovered Service. V1 named a tool after its Service alone, so
two ``prometheus`` Services in different namespaces clashed; here ``name`` is
``<service>.<namespace>`` (the Service's short DNS name), which is unique for
valid Kubernetes names and stable. ``metadata`` values are strings, as in V1.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from dyntoolset.hookspecs import PLUGIN_API_VERSION, hookimpl
from dyntoolset.model import Discovered
from dyntoolset.render._common import ordered, unique_names, utf8_safe
from dyntoolset.renderer import Renderer


class KubernautRenderer(Renderer):
    """Renders the Kubernaut V1 ``toolset.json`` (``{"tools": [...]}``)."""

    name: ClassVar[str] = "kubernaut"
    data_key: ClassVar[str] = "toolset.json"  # V1's key: the Kubernaut agent reads it
    version: ClassVar[str] = "1.0.0"
    description: ClassVar[str] = "Kubernaut V1 toolset.json: one tool per discovered service"

    def render(self, discovered: Sequence[Discovered]) -> str:
        """Return the JSON document for ``discovered``; see :func:`build_document`."""
        return json.dumps(build_document(discovered), indent=2, ensure_ascii=False) + "\n"


def build_document(discovered: Sequence[Discovered]) -> dict[str, Any]:
    """The document as data: ``{"tools": [tool, ...]}`` in namespace/name order."""
    items = ordered(discovered)
    tools = [_tool(found) for found in items]
    # Names are unique for valid Kubernetes names; if the core ever passes the
    # same Service twice, or names with dots, keep the tools apart anyway.
    names = unique_names(
        [tool["name"] for tool in tools],
        [(f.service.namespace, f.service.name, f.detector) for f in items],
    )
    for tool, name in zip(tools, names, strict=True):
        tool["name"] = name
    return {"tools": tools}


def _tool(found: Discovered) -> dict[str, Any]:
    service = found.service
    metadata = {utf8_safe(str(k)): utf8_safe(str(v)) for k, v in found.metadata.items()}
    # Ours last: what identifies the Service is not the detector's to override.
    metadata["detector"] = utf8_safe(found.detector)
    metadata["service"] = utf8_safe(service.key)
    metadata["health_path"] = utf8_safe(found.health_path)
    if found.port is not None:
        metadata["port"] = str(found.port.port)
        metadata["port_name"] = utf8_safe(found.port.name)
    description = found.description or (
        f"{service.name} service in {service.namespace} namespace (type: {found.type})"
    )
    return {
        "name": utf8_safe(f"{service.name}.{service.namespace}"),
        "type": utf8_safe(found.type),
        "endpoint": utf8_safe(found.endpoint),
        "description": utf8_safe(description),
        "namespace": utf8_safe(service.namespace),
        "metadata": dict(sorted(metadata.items())),
    }


#: Built-ins are plugins like any other and declare the API they use.
DYNTOOLSET_PLUGIN_API = PLUGIN_API_VERSION


@hookimpl
def register_renderers() -> list[type[Renderer]]:
    """The ``kubernaut`` renderer."""
    return [KubernautRenderer]
