"""The one table from a toolset *type* to the agent toolsets it becomes.

Both the built-in detectors and the ``custom`` detector (whose type comes from
the ``kubernaut.io/toolset-type`` annotation) go through :func:`toolsets_for`,
so a Service annotated ``kubernaut.io/toolset-type: prometheus`` gets exactly
the toolset the ``prometheus`` detector would give it.

HolmesGPT toolset names and config keys are those of holmesgpt 0.45
(``prometheus/metrics: prometheus_url``, ``grafana/*: api_url``,
``elasticsearch/*: api_url``). A type without an entry (``jaeger``, any
custom type) becomes the generic read-only HTTP toolset of
:func:`dyntoolset.toolsets.http_toolset`, which adds API hints per type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from dyntoolset.model import Discovered, ToolsetSpec
from dyntoolset.toolsets import http_toolset

ToolsetBuilder = Callable[[Discovered], tuple[ToolsetSpec, ...]]

#: ``Discovered.metadata`` key: path appended to the endpoint for the query API
#: (VictoriaMetrics cluster serves PromQL under ``/select/<tenant>/prometheus``).
API_PREFIX = "api_prefix"
#: ``Discovered.metadata`` key: which Prometheus-compatible product was found.
FLAVOR = "flavor"

#: ``Discovered.metadata`` key: the environment variable of HolmesGPT that holds
#: the Grafana service-account token (``detectors.grafana.config.api_key_env``).
#: HolmesGPT expands ``{{ env.NAME }}`` from its own environment, so no secret
#: is ever written into the ConfigMap. Only emitted when configured: HolmesGPT
#: marks the toolset invalid when the variable does not exist.
API_KEY_ENV = "api_key_env"

_FLAVOR_TITLES = MappingProxyType(
    {
        "prometheus": "Prometheus",
        "thanos": "Thanos Query (Prometheus-compatible)",
        "victoriametrics": "VictoriaMetrics (Prometheus-compatible)",
    }
)


def _where(found: Discovered) -> str:
    return f"{found.service.name} in namespace {found.service.namespace}"


def _prometheus(found: Discovered) -> tuple[ToolsetSpec, ...]:
    url = found.endpoint + found.metadata.get(API_PREFIX, "")
    title = _FLAVOR_TITLES.get(found.metadata.get(FLAVOR, ""), "Prometheus")
    return (
        ToolsetSpec(
            kind="prometheus/metrics",
            config={"prometheus_url": url},
            description=f"{title} metrics from {_where(found)}",
            llm_instructions=(
                f"PromQL query API of {title} at {url}. Use it for metrics of "
                f"workloads and nodes in this cluster: instant and range queries, "
                f"label values, series and active alerts."
            ),
        ),
    )


def _grafana(found: Discovered) -> tuple[ToolsetSpec, ...]:
    config = {"api_url": found.endpoint}
    key_env = found.metadata.get(API_KEY_ENV)
    if key_env:
        config["api_key"] = "{{ env.%s }}" % key_env  # noqa: UP031 - braces are literal
    return (
        ToolsetSpec(
            kind="grafana/dashboards",
            config=config,
            description=f"Grafana dashboards of {_where(found)}",
            llm_instructions=(
                f"Grafana HTTP API at {found.endpoint}. Search dashboards and read "
                f"their panels and queries to find which metrics and logs the "
                f"team already watches for a service."
            ),
        ),
    )


def _loki(found: Discovered) -> tuple[ToolsetSpec, ...]:
    return (
        ToolsetSpec(
            kind="grafana/loki",
            config={"api_url": found.endpoint},
            description=f"Loki logs from {_where(found)}",
            llm_instructions=(
                f"Loki query API at {found.endpoint}. Use LogQL to fetch and filter "
                f"container logs by namespace, pod and label."
            ),
        ),
    )


def _tempo(found: Discovered) -> tuple[ToolsetSpec, ...]:
    return (
        ToolsetSpec(
            kind="grafana/tempo",
            config={"api_url": found.endpoint},
            description=f"Tempo traces from {_where(found)}",
            llm_instructions=(
                f"Tempo query API at {found.endpoint}. Search traces with TraceQL "
                f"and fetch a trace by id to follow a request across services."
            ),
        ),
    )


def _elasticsearch(found: Discovered) -> tuple[ToolsetSpec, ...]:
    config = {"api_url": found.endpoint}
    where = _where(found)
    return (
        ToolsetSpec(
            kind="elasticsearch/cluster",
            config=dict(config),
            description=f"Elasticsearch cluster health of {where}",
            llm_instructions=(
                f"Elasticsearch at {found.endpoint}: cluster health, nodes, shard "
                f"allocation and index statistics. Read-only."
            ),
        ),
        ToolsetSpec(
            kind="elasticsearch/data",
            config=dict(config),
            description=f"Elasticsearch documents in {where}",
            llm_instructions=(
                f"Elasticsearch at {found.endpoint}: list indices, read mappings and "
                f"search documents (application logs and events). Read-only."
            ),
        ),
    )


#: Toolset type → builder. The only place that knows which agent toolset a
#: type becomes; aliases let ``custom`` Services name the product they run.
TOOLSET_BUILDERS: Mapping[str, ToolsetBuilder] = MappingProxyType(
    {
        "prometheus": _prometheus,
        "thanos": _prometheus,
        "victoriametrics": _prometheus,
        "victoria-metrics": _prometheus,
        "grafana": _grafana,
        "loki": _loki,
        "tempo": _tempo,
        "elasticsearch": _elasticsearch,
    }
)


def toolsets_for(found: Discovered, type_: str | None = None) -> tuple[ToolsetSpec, ...]:
    """The agent toolsets for ``found``, by ``type_`` (default ``found.type``).

    Types without a built-in mapping become one generic read-only HTTP toolset.
    """
    builder = TOOLSET_BUILDERS.get(type_ or found.type)
    if builder is None:
        return (http_toolset(found),)
    return builder(found)
