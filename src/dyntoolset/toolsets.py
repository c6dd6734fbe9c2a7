"""Building blocks for :meth:`Detector.toolsets <dyntoolset.detector.Detector.toolsets>`.

Public API for plugin authors. One builder per HolmesGPT toolset the
built-in detectors emit (:func:`prometheus_toolset`, :func:`grafana_toolset`,
:func:`loki_toolset`, :func:`tempo_toolset`, :func:`elasticsearch_toolsets`)
and :func:`toolsets_for_type`, the one table from a toolset *type* to the
toolsets it becomes (the ``custom`` detector uses it for
``kubernaut.io/toolset-type``, so an annotated Prometheus gets exactly what the
``prometheus`` detector would give it). A detector may also build a
:class:`~dyntoolset.model.ToolsetSpec` of any other HolmesGPT kind itself.

:func:`http_toolset` builds the generic HTTP toolset that HolmesGPT loads as
``type: http`` (``holmes/plugins/toolsets/http/http_toolset.py`` in
holmesgpt 0.45). Its ``config`` uses only keys that 0.45's
``HttpToolsetConfig``/``EndpointConfig`` define, and only non-default ones:

* ``endpoints`` -- a list of ``{hosts, paths, methods}``;
* ``hosts`` -- whitelist patterns; ``scheme://host:port`` allows exactly that
  scheme, host and port (a bare ``host`` would allow every port of the host);
* ``paths`` -- glob patterns matched with :func:`fnmatch.fnmatch` against the
  request path (``*`` also matches ``/``);
* ``methods`` -- ``GET`` only: agents investigate, they do not change things.

No ``health_check_url``: dyntoolset health-checks every service itself, and
HolmesGPT would otherwise re-probe it on each status refresh.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from urllib.parse import urlsplit

from dyntoolset.credentials import AUTH_KEYS, CredentialSettings, credential_config, env_placeholder
from dyntoolset.model import Discovered, ToolsetSpec

#: Kinds of :class:`ToolsetSpec` the built-in renderers understand besides ``http``:
#: HolmesGPT 0.45 built-in toolsets and their URL config key. All of them are
#: wrapped in ``multi_instance(...)`` in 0.45 (``holmes/plugins/toolsets/__init__.py``),
#: so one entry can carry several servers under ``config.instances``.
BUILTIN_URL_KEYS: Mapping[str, str] = {
    "prometheus/metrics": "prometheus_url",
    "grafana/dashboards": "api_url",
    "grafana/loki": "api_url",
    "grafana/tempo": "api_url",
    "elasticsearch/cluster": "api_url",
    "elasticsearch/data": "api_url",
    # Built by no detector of the core, but by plugins (dyntoolset-victorialogs);
    # multi_instance(VictoriaLogsToolset) in 0.45 too.
    "victorialogs": "api_url",
}

HTTP_KIND = "http"

ToolsetBuilder = Callable[[Discovered], tuple[ToolsetSpec, ...]]

_DEFAULT_PORTS = {"http": 80, "https": 443}

#: What an agent needs to know to use a product's HTTP API without guessing,
#: by toolset type: the paths the HTTP toolset allows and a hint appended to
#: its ``llm_instructions``. Other types allow every path (``*``) and get the
#: generic text only.
API_HINTS: Mapping[str, tuple[tuple[str, ...], str]] = {
    "jaeger": (
        ("/api/*",),
        "This is the Jaeger Query HTTP API (JSON). Useful GET requests:\n"
        "- /api/services: the traced service names.\n"
        "- /api/services/<service>/operations: the operations of one service.\n"
        "- /api/traces?service=<service>&lookback=1h&limit=20: recent traces; add "
        'operation=<op>, minDuration=500ms, tags={"error":"true"} (URL-encoded) '
        "or start/end in microseconds since the epoch to narrow the search.\n"
        "- /api/traces/<traceID>: one trace with all its spans.\n"
        "- /api/dependencies?endTs=<ms since epoch>&lookback=<ms>: the service call graph.\n"
        "Start from /api/services, keep limit small, and look at spans with "
        "error=true tags or unusual durations.",
    ),
}


def host_pattern(endpoint: str) -> str | None:
    """The HolmesGPT host whitelist entry for ``endpoint``: ``scheme://host:port``.

    ``None`` when the URL cannot be expressed as one (not http/https, no host),
    so callers never produce a toolset HolmesGPT would reject.
    """
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or "*" in host:
        return None
    if ":" in host:  # IPv6 literal: HolmesGPT expects it in brackets
        host = f"[{host}]"
    return f"{scheme}://{host}:{port if port is not None else _DEFAULT_PORTS[scheme]}"


def _allowed_paths(endpoint: str, default: tuple[str, ...]) -> list[str]:
    # An endpoint with a path (a custom service's kubernaut.io/toolset-endpoint,
    # e.g. http://svc:8080/api) names where its API lives: allow only that subtree.
    base = urlsplit(endpoint).path.rstrip("/")
    if base:
        return [base, f"{base}/*"]
    return list(default)


def http_toolset(
    found: Discovered, *, paths: Sequence[str] | None = None, hint: str | None = None
) -> ToolsetSpec:
    """A generic read-only HTTP toolset limited to ``found``'s scheme, host and port.

    ``paths`` (glob patterns) and ``hint`` (appended to the instructions)
    default to :data:`API_HINTS` for ``found.type``. An endpoint with a path
    (``http://svc:8080/api``) allows only that subtree. The description is
    ``found.description`` (else ``"<type> service"``) with the Service's
    name and namespace. When the endpoint is not an http(s) URL with a host,
    the spec has no endpoints; renderers leave such a spec out (HolmesGPT
    would reject it).
    """
    pattern = host_pattern(found.endpoint)
    default_paths, default_hint = API_HINTS.get(found.type, (("*",), ""))
    paths = tuple(paths) if paths is not None else default_paths
    hint = default_hint if hint is None else hint
    endpoints = (
        [
            {
                "hosts": [pattern],
                "paths": _allowed_paths(found.endpoint, tuple(paths)),
                "methods": ["GET"],
            }
        ]
        if pattern
        else []
    )
    service = found.service
    what = found.description or f"{found.type} service"
    instructions = (
        f"Read-only HTTP API of the {found.type} service {service.name} in namespace "
        f"{service.namespace}. Base URL: {found.endpoint} (build every request URL from it). "
        "Only GET requests are allowed."
    )
    if hint:
        instructions = f"{instructions}\n{hint}"
    return ToolsetSpec(
        kind=HTTP_KIND,
        config={"endpoints": endpoints},
        description=f"{what} {service.name} in namespace {service.namespace}",
        llm_instructions=instructions,
    )


#: ``Discovered.metadata`` key: path appended to the endpoint for the query API
#: (VictoriaMetrics cluster serves PromQL under ``/select/<tenant>/prometheus``).
API_PREFIX = "api_prefix"
#: ``Discovered.metadata`` key: which Prometheus-compatible product was found.
FLAVOR = "flavor"

_FLAVOR_TITLES = MappingProxyType(
    {
        "prometheus": "Prometheus",
        "thanos": "Thanos Query (Prometheus-compatible)",
        "victoriametrics": "VictoriaMetrics (Prometheus-compatible)",
    }
)


def _where(found: Discovered) -> str:
    return f"{found.service.name} in namespace {found.service.namespace}"


def _with_credentials(
    config: dict[str, object], kind: str, credentials: CredentialSettings | None
) -> dict[str, object]:
    if credentials is not None:
        config.update(credential_config(credentials, AUTH_KEYS[kind]))
    return config


def prometheus_toolset(
    found: Discovered, credentials: CredentialSettings | None = None
) -> tuple[ToolsetSpec, ...]:
    """HolmesGPT's ``prometheus/metrics`` for a Prometheus-compatible query API.

    The URL is the endpoint plus the ``api_prefix`` metadata (VictoriaMetrics
    cluster serves PromQL under ``/select/<tenant>/prometheus``); the
    ``flavor`` metadata (``prometheus``, ``thanos``, ``victoriametrics``)
    names the product in the description. ``credentials``: a bearer token
    (``additional_headers``) and ``verify_ssl``, see
    :mod:`dyntoolset.credentials`.
    """
    url = found.endpoint + found.metadata.get(API_PREFIX, "")
    title = _FLAVOR_TITLES.get(found.metadata.get(FLAVOR, ""), "Prometheus")
    kind = "prometheus/metrics"
    return (
        ToolsetSpec(
            kind=kind,
            config=_with_credentials({"prometheus_url": url}, kind, credentials),
            description=f"{title} metrics from {_where(found)}",
            llm_instructions=(
                f"PromQL query API of {title} at {url}. Use it for metrics of "
                f"workloads and nodes in this cluster: instant and range queries, "
                f"label values, series and active alerts."
            ),
        ),
    )


def grafana_toolset(
    found: Discovered, api_key_env: str = "", credentials: CredentialSettings | None = None
) -> tuple[ToolsetSpec, ...]:
    """HolmesGPT's ``grafana/dashboards``.

    ``api_key_env`` names the environment variable of HolmesGPT holding the
    Grafana service-account token: the config gets ``api_key: "{{ env.NAME }}"``,
    which HolmesGPT expands from its own environment, so no secret is ever
    written into the ConfigMap. Only set it when the variable exists there:
    HolmesGPT marks the toolset invalid otherwise. ``credentials`` is the
    general form (API key, or user and password, and ``verify_ssl``), see
    :mod:`dyntoolset.credentials`.
    """
    kind = "grafana/dashboards"
    config: dict[str, object] = {"api_url": found.endpoint}
    if api_key_env:
        config["api_key"] = env_placeholder(api_key_env)
    _with_credentials(config, kind, credentials)
    return (
        ToolsetSpec(
            kind=kind,
            config=config,
            description=f"Grafana dashboards of {_where(found)}",
            llm_instructions=(
                f"Grafana HTTP API at {found.endpoint}. Search dashboards and read "
                f"their panels and queries to find which metrics and logs the "
                f"team already watches for a service."
            ),
        ),
    )


def loki_toolset(
    found: Discovered, headers: Mapping[str, str] | None = None
) -> tuple[ToolsetSpec, ...]:
    """HolmesGPT's ``grafana/loki``; ``headers`` become its ``additional_headers``
    (a tenant's ``X-Scope-OrgID``)."""
    config: dict[str, object] = {"api_url": found.endpoint}
    if headers:
        config["additional_headers"] = dict(headers)
    return (
        ToolsetSpec(
            kind="grafana/loki",
            config=config,
            description=f"Loki logs from {_where(found)}",
            llm_instructions=(
                f"Loki query API at {found.endpoint}. Use LogQL to fetch and filter "
                f"container logs by namespace, pod and label."
            ),
        ),
    )


def tempo_toolset(found: Discovered) -> tuple[ToolsetSpec, ...]:
    """HolmesGPT's ``grafana/tempo``."""
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


def elasticsearch_toolsets(
    found: Discovered, credentials: CredentialSettings | None = None
) -> tuple[ToolsetSpec, ...]:
    """HolmesGPT's ``elasticsearch/cluster`` and ``elasticsearch/data``.

    ``credentials``: an API key, or a user and password (basic auth), and
    ``verify_ssl``, see :mod:`dyntoolset.credentials`.
    """
    config = _with_credentials({"api_url": found.endpoint}, "elasticsearch/cluster", credentials)
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
#: A builder takes the :class:`Discovered` and returns its toolsets.
TOOLSET_BUILDERS: Mapping[str, ToolsetBuilder] = MappingProxyType(
    {
        "prometheus": prometheus_toolset,
        "thanos": prometheus_toolset,
        "victoriametrics": prometheus_toolset,
        "victoria-metrics": prometheus_toolset,
        "grafana": grafana_toolset,
        "loki": loki_toolset,
        "tempo": tempo_toolset,
        "elasticsearch": elasticsearch_toolsets,
    }
)


def toolsets_for_type(
    found: Discovered, toolset_type: str | None = None
) -> tuple[ToolsetSpec, ...]:
    """The agent toolsets for ``found``, by ``toolset_type`` (default ``found.type``).

    Types without a built-in mapping become one generic read-only HTTP toolset.
    """
    builder = TOOLSET_BUILDERS.get(toolset_type or found.type)
    if builder is None:
        return (http_toolset(found),)
    return builder(found)
