"""dyntoolset-loki: a detector plugin that finds Grafana Loki's query endpoint.

It recognises the Services of the grafana/loki Helm chart (single binary,
simple scalable and distributed modes), the older grafana/loki-distributed
and grafana/loki (2.x) charts, Bitnami grafana-loki and the Loki Operator's
``LokiStack``, and writes a HolmesGPT ``grafana/loki`` toolset for each Loki
installation it finds.

A Loki release has many Services; only one of them is where LogQL queries
should go. By default that is the component that answers queries itself:
``loki`` (single binary), ``loki-read`` (simple scalable) or
``loki-query-frontend`` (distributed), ``<stack>-query-frontend-http``
(LokiStack). Write path, storage, caches, canary, ``*-headless`` and
``*-memberlist`` Services are never matched. The chart's nginx
``loki-gateway`` is matched instead when ``prefer: gateway`` is configured
(never the LokiStack gateway, which wants the tenant's token).

It is also the source of ``docs/writing-a-detector-plugin.md`` in the
dyntoolset repository: keep the two in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import attrs

from dyntoolset.plugin import (
    DetectContext,
    Detector,
    Discovered,
    InvalidService,
    Prefilter,
    Service,
    ToolsetSpec,
    hookimpl,
    loki_toolset,
    tenant_validator,
)
from dyntoolset.plugin import tenant_problem as shared_tenant_problem

__version__ = "0.1.0"

#: Per-Service tenant override, for clusters whose Loki installations use
#: different tenants. Wins over the ``tenant`` setting.
TENANT_ANNOTATION = "dyntoolset-loki/tenant"

# app.kubernetes.io/name of Loki's Services: grafana/loki ("loki"),
# grafana/loki-distributed ("loki-distributed"), Bitnami ("grafana-loki"), the
# Loki Operator's LokiStack ("lokistack": operator/internal/manifests/var.go).
_NAMES = frozenset({"loki", "loki-distributed", "grafana-loki", "lokistack"})
# Components that answer LogQL themselves. "" is grafana/loki's single-binary
# Service, which carries no component label (its memberlist Service doesn't
# either: that one is ruled out by its name and by having no HTTP port).
_QUERY_COMPONENTS = frozenset({"", "single-binary", "read", "query-frontend"})
_GATEWAY = "gateway"
# StatefulSet governing Services, ring gossip and query-scheduler discovery
# Services duplicate or sit beside the real query Service.
_NOT_QUERY_SUFFIXES = ("-headless", "-memberlist", "-discovery")
# Loki's HTTP port: "http-metrics" in grafana/loki, "http" in loki-distributed
# and Bitnami, "metrics" in a LokiStack (found by its number); 3100
# everywhere. The gateway (nginx) serves "http" (grafana/loki: "http-metrics")
# on 80. A LokiStack's gateway has component "lokistack-gateway": never matched.
_QUERY_PORT_NAMES = ("http-metrics", "http")
_QUERY_PORT_NUMBERS = (3100,)
_GATEWAY_PORT_NAMES = ("http",)
_GATEWAY_PORT_NUMBERS = (80, 8080)
# The chart's nginx answers "/" itself and proxies only the API paths, so
# Loki's own /ready is not reachable through the gateway.
_GATEWAY_HEALTH_PATH = "/"

# Discovered.metadata keys, read back by LokiDetector.toolsets().
COMPONENT_KEY = "component"
TENANT_KEY = "tenant"


def tenant_problem(value: str) -> str | None:
    """Why ``value`` is not a valid Loki tenant (``X-Scope-OrgID``), or ``None``."""
    return shared_tenant_problem(value, "Loki")


@attrs.frozen
class LokiSettings:
    """Options of the ``loki`` detector, from ``detectors.loki.config``."""

    #: Which Service of a release to use: ``direct`` is the component that
    #: answers queries (single binary, read, query-frontend); ``gateway`` is
    #: the chart's nginx gateway, for clusters whose network policies only
    #: admit clients through it. Releases without a gateway are then not found.
    prefer: Literal["direct", "gateway"] = "direct"
    #: Tenant sent as ``X-Scope-OrgID``. Required when Loki runs with
    #: ``auth_enabled: true`` (the grafana/loki chart's default); empty sends
    #: no header.
    tenant: str = attrs.field(default="", validator=tenant_validator("Loki"))


class LokiDetector(Detector[LokiSettings]):
    """Finds the query endpoint of each Loki installation; writes a ``grafana/loki`` toolset."""

    name = "loki"
    version = __version__
    description = "Grafana Loki logs (query endpoint)"
    # After the built-ins (1-5): a Service they claim is theirs.
    default_priority = 20
    health_path = "/ready"
    Settings = LokiSettings
    # detect()'s first test, as data: it is called only for Services meeting
    # one of these. It matches nothing, and refuses nothing as invalid,
    # without one, whatever the settings.
    prefilter = Prefilter(
        label_values={
            # The name label of every chart and of the operator...
            "app.kubernetes.io/name": _NAMES,
            # ...or, where that label is absent, the old charts' "app" label.
            "app": _NAMES,
        },
    )

    def detect(self, service: Service, ctx: DetectContext[LokiSettings]) -> Discovered | None:
        """Return the Loki query endpoint if ``service`` is one; ``None`` otherwise."""
        labels = service.labels
        # Cheapest test first: almost every Service in a cluster stops here.
        name = labels.get("app.kubernetes.io/name") or labels.get("app")
        if name not in _NAMES:
            return None
        if service.type == "ExternalName" or service.name.endswith(_NOT_QUERY_SUFFIXES):
            return None
        if labels.get("variant") == "headless":
            return None
        settings = ctx.settings
        component = labels.get("app.kubernetes.io/component", "")
        if not component and service.is_headless:
            # The single-binary Service is a ClusterIP one; an unlabelled
            # headless Service of a release is a peer-discovery Service.
            return None
        if component == _GATEWAY:
            if settings.prefer != "gateway":
                return None
            port = service.port_named(*_GATEWAY_PORT_NAMES) or service.port_numbered(
                *_GATEWAY_PORT_NUMBERS
            )
        elif component in _QUERY_COMPONENTS:
            if settings.prefer == "gateway":
                return None
            port = service.port_named(*_QUERY_PORT_NAMES) or service.port_numbered(
                *_QUERY_PORT_NUMBERS
            )
        else:
            # write, backend, distributor, ingester, querier, compactor,
            # index-gateway, ruler, canary, memcached-*-cache, ...
            return None
        # No fallback to "the first port": it would be gRPC or memberlist.
        if port is None:
            return None
        tenant = service.annotations.get(TENANT_ANNOTATION, settings.tenant)
        problem = tenant_problem(tenant) if tenant else None
        if problem:
            # The Service asks for Loki but is malformed: skipped with this reason.
            raise InvalidService(f"annotation {TENANT_ANNOTATION} {problem}")
        health_path = ctx.health_path
        if component == _GATEWAY and not ctx.health_path_configured:
            health_path = _GATEWAY_HEALTH_PATH
        # The component and the tenant are per Service, so they travel as
        # metadata (which toolset.json publishes: neither is a secret).
        metadata = {COMPONENT_KEY: component or "single-binary"}
        if tenant:
            metadata[TENANT_KEY] = tenant
        return self.discovered(service, port, ctx, health_path=health_path, metadata=metadata)

    def toolsets(self, found: Discovered, settings: LokiSettings) -> Sequence[ToolsetSpec]:
        """HolmesGPT's ``grafana/loki`` toolset, with the tenant header when there is one."""
        # dyntoolset's builder is the one a Service annotated
        # kubernaut.io/toolset-type: loki gets too, so both look the same.
        tenant = found.metadata.get(TENANT_KEY)
        return loki_toolset(found, {"X-Scope-OrgID": tenant} if tenant else None)


#: The plugin API this module was written for (dyntoolset.plugin.PLUGIN_API_VERSION):
#: 2.2 brought the shared tenant rule, 2.3 the detector prefilter; dyntoolset
#: refuses another major version.
DYNTOOLSET_PLUGIN_API = "2.3"


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`LokiDetector` with dyntoolset."""
    return [LokiDetector]
