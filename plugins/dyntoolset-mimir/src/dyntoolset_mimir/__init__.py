"""dyntoolset-mimir: a detector plugin that finds Grafana Mimir's query frontend.

Mimir answers PromQL under the ``/prometheus`` prefix, so each installation
becomes an instance of HolmesGPT's ``prometheus/metrics`` toolset whose
``prometheus_url`` is ``<endpoint>/prometheus``, with the tenant's
``X-Scope-OrgID`` header when one is configured (Mimir requires one unless
multi-tenancy is switched off).

It recognises the Services of the grafana/mimir-distributed chart: the query
frontend by default, or the gateway (nginx, ``-gateway``; ``-nginx`` in
older charts) with ``prefer: gateway``. Ingesters, distributors,
store-gateways, compactors, queriers, query schedulers, rulers (and the
ruler's own query frontend), Mimir's alertmanager, caches, the gossip ring and
every headless Service are never matched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from dyntoolset.plugin import (
    DetectContext,
    Detector,
    Discovered,
    Prefilter,
    Service,
    ToolsetSpec,
    hookimpl,
    tenant_validator,
)
from dyntoolset.plugin import tenant_problem as shared_tenant_problem

__version__ = "0.1.0"

# app.kubernetes.io/name of mimir-distributed's Services ("mimir", its
# mimir.name helper); with nameOverride the chart label still names the chart.
_NAME = "mimir"
# Grafana Enterprise Metrics (the same chart with enterprise.enabled) needs
# GEM tokens on every request: not covered.
_ENTERPRISE_NAME = "enterprise-metrics"
_CHART_PREFIXES = tuple(f"mimir-distributed-{digit}" for digit in "0123456789")
_QUERY_FRONTEND = "query-frontend"
# The nginx gateway: component "gateway" (chart 4.x and later), "nginx" before.
_GATEWAYS = frozenset({"gateway", "nginx"})
# Mimir's HTTP port is "http-metrics" (8080) on every component; the gateway
# Service serves "http-metrics" on 80 (older nginx: "http-metric").
_QUERY_PORT_NAMES = ("http-metrics",)
_QUERY_PORT_NUMBERS = (8080,)
_GATEWAY_PORT_NAMES = ("http-metrics", "http-metric", "http")
_GATEWAY_PORT_NUMBERS = (80, 8080)
# The chart's nginx answers "/" itself (no auth), whatever the backends do; a
# configured health_check.path wins.
_GATEWAY_HEALTH_PATH = "/"

#: Where Mimir serves the Prometheus HTTP API (``-http.prometheus-http-prefix``).
PROMETHEUS_PREFIX = "/prometheus"
#: ``Discovered.metadata`` keys: the component and the query API's prefix.
COMPONENT_KEY = "component"
API_PREFIX_KEY = "api_prefix"


def tenant_problem(value: str) -> str | None:
    """Why ``value`` is not a valid Mimir tenant (``X-Scope-OrgID``), or ``None``."""
    return shared_tenant_problem(value, "Mimir")


@attrs.frozen
class MimirSettings:
    """Options of the ``mimir`` detector, from ``detectors.mimir.config``."""

    #: ``direct``: the query frontend. ``gateway``: the chart's nginx gateway
    #: instead, for clusters whose network policies admit clients only through
    #: it; releases without a gateway are then not found.
    prefer: Literal["direct", "gateway"] = "direct"
    #: Tenant sent as ``X-Scope-OrgID``. Mimir rejects queries without one
    #: unless ``multitenancy_enabled: false`` (then the tenant is
    #: ``anonymous``); empty sends no header.
    tenant: str = attrs.field(default="", validator=tenant_validator("Mimir"))


def _is_mimir(labels: Mapping[str, str]) -> bool:
    name = labels.get("app.kubernetes.io/name")
    if name == _NAME:
        return True
    if name == _ENTERPRISE_NAME:
        return False
    return labels.get("helm.sh/chart", "").startswith(_CHART_PREFIXES)


class MimirDetector(Detector[MimirSettings]):
    """Finds each Mimir's query frontend; writes a ``prometheus/metrics`` toolset under ``/prometheus``."""

    name = "mimir"
    version = __version__
    description = "Grafana Mimir metrics (PromQL query frontend)"
    # After the built-ins (1-5): a Service they claim is theirs.
    default_priority = 23
    health_path = "/ready"
    Settings = MimirSettings
    # What _is_mimir() asks for, as data: detect() is called only for Services
    # meeting one of these (it matches nothing without one), whatever "prefer".
    prefilter = Prefilter(
        # mimir-distributed's name label...
        label_values={"app.kubernetes.io/name": (_NAME,)},
        # ...or its chart label, for a release installed with nameOverride.
        label_prefixes={"helm.sh/chart": _CHART_PREFIXES},
    )

    def detect(self, service: Service, ctx: DetectContext[MimirSettings]) -> Discovered | None:
        """Return the Mimir query endpoint if ``service`` is one; ``None`` otherwise."""
        labels = service.labels
        if not _is_mimir(labels):
            return None
        # Every query Service is a ClusterIP one; "-headless" twins and the
        # gossip ring are headless.
        if service.type == "ExternalName" or service.is_headless:
            return None
        if service.name.endswith("-headless"):
            return None
        component = labels.get("app.kubernetes.io/component", "")
        gateway = ctx.settings.prefer == "gateway"
        if component == _QUERY_FRONTEND and not gateway:
            port = service.port_named(*_QUERY_PORT_NAMES) or service.port_numbered(
                *_QUERY_PORT_NUMBERS
            )
        elif component in _GATEWAYS and gateway:
            port = service.port_named(*_GATEWAY_PORT_NAMES) or service.port_numbered(
                *_GATEWAY_PORT_NUMBERS
            )
        else:
            # ingester(-zone-*), distributor, querier, query-scheduler,
            # store-gateway, compactor, ruler, ruler-query-frontend,
            # alertmanager, overrides-exporter, *-cache, gossip-ring, ...
            return None
        # No fallback to the first port: it would be gRPC.
        if port is None or port.protocol.upper() != "TCP":
            return None
        health_path = ctx.health_path
        if gateway and not ctx.health_path_configured:
            health_path = _GATEWAY_HEALTH_PATH
        metadata = {COMPONENT_KEY: component, API_PREFIX_KEY: PROMETHEUS_PREFIX}
        return self.discovered(service, port, ctx, health_path=health_path, metadata=metadata)

    def toolsets(self, found: Discovered, settings: MimirSettings) -> Sequence[ToolsetSpec]:
        """HolmesGPT's ``prometheus/metrics`` on ``<endpoint>/prometheus``, with the tenant header."""
        url = found.endpoint + found.metadata.get(API_PREFIX_KEY, PROMETHEUS_PREFIX)
        config: dict[str, Any] = {"prometheus_url": url}
        if settings.tenant:
            config["additional_headers"] = {"X-Scope-OrgID": settings.tenant}
        service = found.service
        return (
            ToolsetSpec(
                kind="prometheus/metrics",
                config=config,
                description=(
                    f"Grafana Mimir metrics from {service.name} in namespace {service.namespace}"
                ),
                llm_instructions=(
                    f"PromQL query API of Grafana Mimir at {url}. Use it for metrics of "
                    f"workloads and nodes: instant and range queries, label values and series. "
                    f"Mimir keeps long-term metrics of one or more clusters; filter by the "
                    f"cluster label when there are several."
                ),
            ),
        )


#: The plugin API this module was written for (dyntoolset.plugin.PLUGIN_API_VERSION):
#: 2.3 brought the detector prefilter; dyntoolset refuses another major version.
DYNTOOLSET_PLUGIN_API = "2.3"


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`MimirDetector` with dyntoolset."""
    return [MimirDetector]
