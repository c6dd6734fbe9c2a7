"""The ``grafana`` detector: the Grafana HTTP API.

Matches Grafana installed by grafana/grafana (also as the subchart of
kube-prometheus-stack and loki-stack), Bitnami grafana, and the Grafana
Operator. Loki, Tempo, Mimir, Alloy, the agent, the image renderer, the
chart's MCP server and the headless alerting-gossip Service are ignored: they
are other products or not the dashboard API (Loki and Tempo belong to their
own detectors). See ``docs/detectors.md``.
"""

from __future__ import annotations

from typing import Any

import attrs

from dyntoolset.credentials import AUTH_KEYS, CredentialSettings
from dyntoolset.detector import DetectContext, Detector, choose_port
from dyntoolset.detectors._common import (
    APP,
    NAME,
    BuiltinDetector,
    component_label,
    from_chart,
)
from dyntoolset.hookspecs import PLUGIN_API_VERSION, hookimpl
from dyntoolset.model import Discovered, Service, ToolsetSpec
from dyntoolset.prefilter import Prefilter
from dyntoolset.toolsets import grafana_toolset

# grafana/grafana labels every Service of a release app.kubernetes.io/name=grafana;
# its MCP server Service adds component "mcp-server". Bitnami grafana sets
# component "grafana" on the Grafana Service itself.
_GRAFANA_COMPONENTS = frozenset({"", "grafana"})
# grafana/grafana: port ``http-web`` (chart >= 7.x, earlier ``service``) 80 -> 3000;
# Bitnami: ``http`` 3000; Grafana Operator v5: ``grafana`` 3000.
_PORT_NAMES = ("http-web", "service", "http", "grafana", "https", "web")
_PORT_NUMBERS = (3000, 80, 443)
# The Grafana Operator (v5) Service ``<grafana>-service`` carries only the labels
# the Grafana resource asks for (often none), but its port is always named
# "grafana" (config.GrafanaHttpPortName).
_OPERATOR_PORT_NAME = "grafana"
_IMAGE_RENDERER_SUFFIX = "-image-renderer"


@attrs.frozen
class GrafanaSettings(CredentialSettings):
    """Options of the ``grafana`` detector (``detectors.grafana.config``).

    The credential fields of :class:`~dyntoolset.credentials.CredentialSettings`
    that HolmesGPT's ``grafana/dashboards`` takes: ``api_key_env`` (a
    service-account token, written as ``api_key: "{{ env.NAME }}"``), or
    ``username``/``username_env`` with ``password_env``, and ``verify_ssl``.
    Unset: nothing is written (anonymous access, or set it in overrides).
    """

    auth_keys = AUTH_KEYS["grafana/dashboards"]


class GrafanaDetector(BuiltinDetector[GrafanaSettings]):
    """Finds Grafana servers; writes a ``grafana/dashboards`` toolset."""

    name = "grafana"
    description = "Grafana dashboards"
    default_priority = 2
    health_path = "/api/health"
    Settings = GrafanaSettings
    # detect() takes a Service named grafana, one of the grafana chart (a
    # nameOverride), or the operator's port name; nothing else.
    prefilter = Prefilter(
        label_values={NAME: ["grafana"], APP: ["grafana"]},
        charts=["grafana"],
        port_names=[_OPERATOR_PORT_NAME],
    )

    def detect(self, service: Service, ctx: DetectContext[GrafanaSettings]) -> Discovered | None:
        """Return the Grafana API endpoint if ``service`` is a Grafana server."""
        if not service.ports or service.type == "ExternalName":
            return None
        labels = service.labels
        name = labels.get(NAME) or labels.get(APP) or ""
        if name == "grafana" or (
            # grafana/grafana with a nameOverride: the name label is the
            # override (the image renderer's is "<override>-image-renderer"),
            # the chart label is still grafana-<version>.
            from_chart(labels, "grafana") and not name.endswith(_IMAGE_RENDERER_SUFFIX)
        ):
            if component_label(labels) not in _GRAFANA_COMPONENTS:
                return None
        elif name or service.port_named(_OPERATOR_PORT_NAME) is None:
            # Any other product (loki, tempo, grafana-agent, alloy,
            # grafana-image-renderer ...), or no Grafana sign at all.
            return None
        # ``<fullname>-headless`` (clusterIP None, port 3000) exists for the
        # StatefulSet/alerting HA mode next to the regular ClusterIP Service.
        if service.is_headless:
            return None
        port = choose_port(service, _PORT_NAMES, _PORT_NUMBERS)
        if port is None:
            return None
        return self.discovered(service, port, ctx)

    def toolsets(self, found: Discovered, settings: GrafanaSettings) -> tuple[ToolsetSpec, ...]:
        """``grafana/dashboards``, with the credentials that are configured."""
        return grafana_toolset(found, credentials=settings)


#: Built-ins are plugins like any other and declare the API they use.
DYNTOOLSET_PLUGIN_API = PLUGIN_API_VERSION


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`GrafanaDetector`."""
    return [GrafanaDetector]
