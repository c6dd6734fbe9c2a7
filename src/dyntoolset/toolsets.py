"""Building blocks for :meth:`Detector.toolsets <dyntoolset.detector.Detector.toolsets>`.

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

from collections.abc import Mapping
from urllib.parse import urlsplit

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
}

HTTP_KIND = "http"

_DEFAULT_PORTS = {"http": 80, "https": 443}

# What an agent needs to know to use a product's HTTP API without guessing.
# Keyed by detector type; anything else gets the generic text only.
_API_HINTS: Mapping[str, tuple[tuple[str, ...], str]] = {
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


def http_toolset(found: Discovered) -> ToolsetSpec:
    """A generic read-only HTTP toolset limited to ``found``'s scheme, host and port.

    When the endpoint is not an http(s) URL with a host, the spec has no
    endpoints; renderers leave such a spec out (HolmesGPT would reject it).
    """
    pattern = host_pattern(found.endpoint)
    paths, hint = _API_HINTS.get(found.type, (("*",), ""))
    endpoints = (
        [{"hosts": [pattern], "paths": _allowed_paths(found.endpoint, paths), "methods": ["GET"]}]
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
