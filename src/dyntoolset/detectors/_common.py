"""Helpers shared by the built-in detectors (not part of the plugin API).

Everything here runs once per Service per cycle, so it only does dictionary
look-ups and string comparisons: no regular expressions, no allocation of
intermediate collections on the common (non-matching) path.
"""

from __future__ import annotations

from collections.abc import Mapping

from dyntoolset.detector import Detector, SettingsT
from dyntoolset.model import Discovered, Port, ToolsetSpec
from dyntoolset.toolsets import toolsets_for_type
from dyntoolset.version import __version__

#: Label keys, named once so a typo cannot hide in one detector.
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
APP = "app"
LEGACY_COMPONENT = "component"
HELM_CHART = "helm.sh/chart"
LEGACY_CHART = "chart"


def from_chart(labels: Mapping[str, str], chart: str) -> bool:
    """True when ``helm.sh/chart`` (or the legacy ``chart``) label is ``<chart>-<version>``.

    Helm charts derive ``app.kubernetes.io/name`` (or ``app``) from
    ``nameOverride``, but the chart label always carries the chart's own name.
    The version must follow directly, so ``prometheus`` does not match
    ``prometheus-pushgateway-2.15.0``.
    """
    value = labels.get(HELM_CHART) or labels.get(LEGACY_CHART)
    if not value or not value.startswith(chart):
        return False
    end = len(chart)
    return value[end : end + 1] == "-" and value[end + 1 : end + 2].isdigit()


def name_label(labels: Mapping[str, str]) -> str:
    """``app.kubernetes.io/name``, falling back to the legacy ``app`` label."""
    return labels.get(NAME) or labels.get(APP) or ""


def component_label(labels: Mapping[str, str]) -> str:
    """``app.kubernetes.io/component``, falling back to the legacy ``component`` label."""
    return labels.get(COMPONENT) or labels.get(LEGACY_COMPONENT) or ""


# appProtocol values of ports that only speak HTTP/2 (gRPC or h2c): an HTTP/1.1
# client such as the agent's cannot use them.
_HTTP2_ONLY_PROTOCOLS = frozenset({"grpc", "h2c", "kubernetes.io/h2c"})


def is_grpc(port: Port) -> bool:
    """True for a gRPC (or cleartext HTTP/2) port: named ``grpc``, ``grpc-*`` or
    ``*-grpc``, or with such an ``appProtocol``. Never a query API an agent can call."""
    if port.app_protocol.lower() in _HTTP2_ONLY_PROTOCOLS:
        return True
    name = port.name.lower()
    return name == "grpc" or name.startswith("grpc-") or name.endswith("-grpc")


class BuiltinDetector(Detector[SettingsT]):
    """Base of the built-in detectors: shared version and the shared toolset mapping."""

    version = __version__

    def toolsets(self, found: Discovered, settings: SettingsT) -> tuple[ToolsetSpec, ...]:
        """The agent toolsets for ``found.type``, from :func:`dyntoolset.toolsets.toolsets_for_type`."""
        return toolsets_for_type(found)
