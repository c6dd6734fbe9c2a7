"""The ``jaeger`` detector: the Jaeger query API (and UI).

Matches the query Service of the jaegertracing/jaeger chart (v1 components,
all-in-one and v2), the Jaeger Operator and Bitnami jaeger. Collectors,
agents, ingesters and the HotROD demo are ignored: they receive spans and
cannot answer queries. See ``docs/detectors.md``.
"""

from __future__ import annotations

from typing import Any

from dyntoolset.detector import DetectContext, Detector, NoSettings, choose_port
from dyntoolset.detectors._common import (
    APP,
    COMPONENT,
    LEGACY_COMPONENT,
    NAME,
    PART_OF,
    BuiltinDetector,
    component_label,
    from_chart,
)
from dyntoolset.hookspecs import PLUGIN_API_VERSION, hookimpl
from dyntoolset.model import Discovered, Service
from dyntoolset.prefilter import Prefilter

# "query": jaeger chart v1 ``<release>-jaeger-query`` and Bitnami ``-query``;
# "service-query": the Jaeger Operator's ``<name>-query`` and the chart's
# all-in-one/v2 ``<release>-jaeger-query`` (headless, the only query Service
# in that mode); "all-in-one": jaeger chart v2's single ``<release>-jaeger``
# Service, which lists agent, collector, query and metrics ports together.
_QUERY_COMPONENTS = frozenset({"query", "service-query"})
_ALL_IN_ONE = "all-in-one"
# chart v2 and the operator: ``http-query`` 16686 (``https-query`` 443 behind
# the operator's OAuth proxy); chart v1: ``query`` 80 -> 16686; Bitnami: ``api``.
_PORT_NAMES = ("http-query", "query", "https-query", "api", "ui", "http")
_PORT_NUMBERS = (16686,)


class JaegerDetector(BuiltinDetector[NoSettings]):
    """Finds the Jaeger query service; writes a generic read-only HTTP toolset."""

    name = "jaeger"
    description = "Jaeger distributed tracing"
    default_priority = 3
    health_path = "/"
    # The component test of detect() is necessary and the rarest: only
    # query and all-in-one components get further.
    prefilter = Prefilter(
        label_values={
            COMPONENT: [*_QUERY_COMPONENTS, _ALL_IN_ONE],
            LEGACY_COMPONENT: [*_QUERY_COMPONENTS, _ALL_IN_ONE],
        }
    )

    def detect(self, service: Service, ctx: DetectContext[NoSettings]) -> Discovered | None:
        """Return the query endpoint if ``service`` is a Jaeger query Service."""
        labels = service.labels
        if not labels or not service.ports or service.type == "ExternalName":
            return None
        # The component first: it rules out almost every Service cheaply.
        component = component_label(labels)
        if component not in _QUERY_COMPONENTS and component != _ALL_IN_ONE:
            return None  # collector, agent, ingester, hotrod, any other product
        # Charts: app.kubernetes.io/name=jaeger (with a nameOverride, only the
        # chart label jaeger-<version> says so). Operator: app=jaeger with
        # app.kubernetes.io/name=<instance>-query. Bitnami: also part-of=jaeger.
        if not (
            labels.get(NAME) == "jaeger"
            or labels.get(APP) == "jaeger"
            or labels.get(PART_OF) == "jaeger"
            or from_chart(labels, "jaeger")
        ):
            return None
        if component in _QUERY_COMPONENTS:
            # Headless is accepted: the chart's all-in-one query Service is
            # headless and is the only way to reach the query API.
            port = choose_port(service, _PORT_NAMES, _PORT_NUMBERS)
        else:
            # All-in-one: never fall back to the first port, a UDP agent port.
            port = service.port_named(*_PORT_NAMES) or service.port_numbered(*_PORT_NUMBERS)
        if port is None:
            return None
        return self.discovered(service, port, ctx)


#: Built-ins are plugins like any other and declare the API they use.
DYNTOOLSET_PLUGIN_API = PLUGIN_API_VERSION


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`JaegerDetector`."""
    return [JaegerDetector]
