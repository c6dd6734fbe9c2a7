"""The ``grafana`` detector: the Grafana HTTP API.

Matches Grafana installed by grafana/grafana (also as the subchart of
kube-prometheus-stack and loki-stack), Bitnami grafana, and the Grafana
Operator. Loki, Tempo, Mimir, Alloy, the agent, the image renderer, the
chart's MCP server and the headless alerting-gossip Service are ignored: they
are other products or not the dashboard API (Loki and Tempo belong to their
own detectors). See ``docs/detectors.md``.
"""

from __future__ import annotations

from dyntoolset.detector import DetectContext, choose_port
from dyntoolset.detectors._common import (
    APP,
    NAME,
    BuiltinDetector,
    component_label,
    scheme_of,
)
from dyntoolset.hookspecs import hookimpl
from dyntoolset.model import Discovered, Service

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


class GrafanaDetector(BuiltinDetector):
    """Finds Grafana servers; writes a ``grafana/dashboards`` toolset."""

    name = "grafana"
    description = "Grafana dashboards"
    default_priority = 2
    health_path = "/api/health"

    def detect(self, service: Service, ctx: DetectContext) -> Discovered | None:
        """Return the Grafana API endpoint if ``service`` is a Grafana server."""
        if not service.ports or service.type == "ExternalName":
            return None
        labels = service.labels
        name = labels.get(NAME) or labels.get(APP) or ""
        if name == "grafana":
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
        return self.discovered(service, port, ctx, scheme=scheme_of(service, port))


@hookimpl
def register_detectors() -> list[type[BuiltinDetector]]:
    """Register :class:`GrafanaDetector`."""
    return [GrafanaDetector]
