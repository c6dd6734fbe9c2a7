"""dyntoolset-tempo: a detector plugin that finds Grafana Tempo's query endpoint.

It recognises the Services of the grafana/tempo Helm chart (single binary),
the grafana/tempo-distributed chart (the query frontend) and the Tempo
operator (a ``TempoStack``'s query frontend, a ``TempoMonolithic``'s Tempo
Service), and writes a HolmesGPT ``grafana/tempo`` toolset for each.

A Tempo release has many Services; only one of them answers TraceQL and
trace-by-id queries for the whole installation. Distributors, ingesters,
compactors, queriers, metrics generators, memcached, gossip-ring and the
``*-discovery`` / ``*-headless`` Services are never matched; neither are the
gateways (nginx in tempo-distributed, the operator's multi-tenant gateway),
which need the tenant's authentication.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dyntoolset.plugin import (
    DetectContext,
    Detector,
    Discovered,
    NoSettings,
    Prefilter,
    Service,
    ToolsetSpec,
    hookimpl,
    tempo_toolset,
)

__version__ = "0.1.0"

# app.kubernetes.io/name of Tempo's query Services: "tempo" for both Grafana
# charts and the operator's TempoStack, "tempo-monolithic" for the operator's
# TempoMonolithic (internal/manifests/monolithic/labels.go).
_NAMES = frozenset({"tempo", "tempo-monolithic"})
# With nameOverride the name label holds the override, but helm.sh/chart still
# names the chart: "tempo-1.24.4", "tempo-distributed-1.61.3" (not
# "tempo-vulture-...", whose chart name goes on with a word, not a version).
_CHART_PREFIXES = tuple(
    f"{chart}-{digit}" for chart in ("tempo", "tempo-distributed") for digit in "0123456789"
)
# app.kubernetes.io/component of the Service that answers queries, and what we
# call it: the grafana/tempo chart labels its single Service with none.
_QUERY_COMPONENTS = {
    "": "single-binary",  # grafana/tempo
    "query-frontend": "query-frontend",  # tempo-distributed, TempoStack
    "tempo": "monolithic",  # TempoMonolithic
}
# StatefulSet governing Services and the querier/frontend discovery Services
# (headless, publishNotReadyAddresses) duplicate the query Service.
_NOT_QUERY_SUFFIXES = ("-headless", "-discovery")
# Tempo's HTTP server: "tempo-prom-metrics" in grafana/tempo, "http-metrics" in
# tempo-distributed, "http" in the operator; 3200 today, 3100 in older charts.
_PORT_NAMES = ("http-metrics", "tempo-prom-metrics", "http")
_PORT_NUMBERS = (3200, 3100)

#: ``Discovered.metadata`` key: which Tempo Service this is (``single-binary``,
#: ``query-frontend``, ``monolithic``).
COMPONENT_KEY = "component"


def _is_tempo(labels: Mapping[str, str]) -> bool:
    name = labels.get("app.kubernetes.io/name") or labels.get("app")
    if name in _NAMES:
        return True
    return labels.get("helm.sh/chart", "").startswith(_CHART_PREFIXES)


class TempoDetector(Detector[NoSettings]):
    """Finds the query endpoint of each Tempo installation; writes a ``grafana/tempo`` toolset."""

    name = "tempo"
    version = __version__
    description = "Grafana Tempo traces (query endpoint)"
    # After the built-ins (1-5): a Service they claim is theirs.
    default_priority = 21
    health_path = "/ready"
    # What _is_tempo() asks for, as data: detect() is called only for Services
    # meeting one of these (detect() matches nothing without one of them).
    prefilter = Prefilter(
        label_values={
            # The name label of both charts and the operator...
            "app.kubernetes.io/name": _NAMES,
            # ...or, where that label is absent, the legacy "app" label.
            "app": _NAMES,
        },
        # A release installed with nameOverride: the chart label.
        label_prefixes={"helm.sh/chart": _CHART_PREFIXES},
    )

    def detect(self, service: Service, ctx: DetectContext[NoSettings]) -> Discovered | None:
        """Return the Tempo query endpoint if ``service`` is one; ``None`` otherwise."""
        labels = service.labels
        if not _is_tempo(labels):
            return None
        # Every Tempo query Service is a ClusterIP one; headless Services of a
        # release are gossip rings and StatefulSet governing Services.
        if service.type == "ExternalName" or service.is_headless:
            return None
        if service.name.endswith(_NOT_QUERY_SUFFIXES):
            return None
        component = _QUERY_COMPONENTS.get(labels.get("app.kubernetes.io/component", ""))
        if component is None:
            # distributor, ingester, querier, compactor, metrics-generator,
            # gateway, memcached, gossip-ring, jaegerui, ...
            return None
        # No fallback to "the first port": grafana/tempo lists its UDP Jaeger
        # receivers first, and the others are OTLP, Zipkin or gRPC.
        port = service.port_named(*_PORT_NAMES) or service.port_numbered(*_PORT_NUMBERS)
        if port is None or port.protocol.upper() != "TCP":
            return None
        return self.discovered(service, port, ctx, metadata={COMPONENT_KEY: component})

    def toolsets(self, found: Discovered, settings: NoSettings) -> Sequence[ToolsetSpec]:
        """HolmesGPT's ``grafana/tempo`` toolset (the same as for a Service annotated ``tempo``)."""
        return tempo_toolset(found)


#: The plugin API this module was written for (dyntoolset.plugin.PLUGIN_API_VERSION):
#: 2.3 brought the detector prefilter; dyntoolset refuses another major version.
DYNTOOLSET_PLUGIN_API = "2.3"


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`TempoDetector` with dyntoolset."""
    return [TempoDetector]
