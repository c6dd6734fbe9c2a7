"""What the running controller knows, as documents: ``/api/v1/statistics``,
``/api/v1/services`` and the status page that shows them.

:class:`ControllerStatus` builds both documents from the live controller's
cached state only: the reconciler's last outcomes (and the
:class:`~dyntoolset.pipeline.Cycle` of the last discovery), the Service
cache's ``synced``, the health checker's :class:`~dyntoolset.health.HealthStats`,
the metrics, leadership and the configuration's generation and source.
Nothing here triggers a discovery, a health check or an API call: a reader
hammering the API costs dictionary lookups, never cluster load.

The verdicts of ``/api/v1/services`` are :func:`dyntoolset.pipeline.service_verdicts`
of the last cycle (computed once per cycle, when first asked), so they are
exactly what the cycle did; ``dyntoolset explain`` answers the same question
offline, detector by detector.

:func:`status_routes` and :func:`page_routes` are what the API server mounts:
the former behind authentication (action ``read``), the latter open (the page
is static; its script calls the API with the user's token).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Protocol

import attrs
from aiohttp import web

from dyntoolset.controller.problems import problem
from dyntoolset.controller.reconciler import ReconcileOutcome, Reconciler
from dyntoolset.controller.reload import RELOAD_RESULTS, LastReload
from dyntoolset.health import HealthStats
from dyntoolset.health.probe import OK, UNCHECKED
from dyntoolset.metrics import Metrics
from dyntoolset.model import Discovered
from dyntoolset.pipeline import SERVICE_VERDICTS, Cycle, ServiceVerdict, service_verdicts

__all__ = [
    "PAGE_HEADERS",
    "SERVICE_FILTERS",
    "ControllerStatus",
    "page_routes",
    "rfc3339",
    "status_routes",
    "success_rate",
]

#: The query parameters of ``/api/v1/services`` (each at most once, non-empty).
SERVICE_FILTERS = ("namespace", "detector", "verdict")

#: Headers of the status page and its assets. The page shows Service names
#: and annotation-derived text that anyone who may edit a Service controls:
#: the script only ever sets ``textContent``, and the CSP forbids inline
#: script, other origins and framing in case anything ever slips.
PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

#: The page's files (package data next to this module) and their content types.
_ASSETS = {
    "index.html": "text/html",
    "status.js": "text/javascript",
    "status.css": "text/css",
}


class CacheState(Protocol):
    """What the status needs of the Service cache
    (:class:`~dyntoolset.kube.services.ServiceCache` is one)."""

    @property
    def synced(self) -> bool:
        """Whether the cache holds a complete list."""
        ...


def rfc3339(moment: datetime | float | None) -> str | None:
    """``moment`` (aware datetime or Unix time) as RFC 3339 UTC with ``Z``; ``None`` stays."""
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def success_rate(detector: str, checked: Sequence[Discovered]) -> float:
    """The share of ``detector``'s services in ``checked`` whose last health check passed.

    Only services that were really checked count: those without a result
    (health checks off) or with ``unchecked`` (health check kind ``none``,
    or a TCP check through the API server's proxy) are neither successes
    nor failures. A service still kept by hysteresis after a failed check
    counts as a failure: the rate is about the checks, not the toolsets.
    ``1.0`` when none of the detector's services was checked (nothing
    failed), which includes a disabled detector and one that found nothing.
    """
    results = [
        d.health.reason
        for d in checked
        if d.detector == detector and d.health is not None and d.health.reason != UNCHECKED
    ]
    if not results:
        return 1.0
    return round(sum(1 for reason in results if reason == OK) / len(results), 4)


class ControllerStatus:
    """The documents of the statistics and services endpoints; see the module docstring.

    ``reconciler`` gives the current engine (it changes on reloads), the
    last reconcile and the last discovery; ``cache`` whether the Service
    list is complete; the health statistics are those of the reconciler's
    current health check (:meth:`~dyntoolset.controller.reconciler.ControllerHealthCheck.statistics`;
    none when checks are off); ``metrics`` holds the discovery count; ``is_leader`` says
    whether this replica writes; ``configuration`` returns the configuration
    ``(generation, source)`` (default: generation 1 and the engine's
    configuration source, until a reloader says otherwise); ``last_reload``
    how the latest reload ended (:attr:`~dyntoolset.controller.reload.Reloader.last_reload`;
    default: none yet), the reload counts come from ``metrics``. Plugin load
    failures are the current engine's (:attr:`~dyntoolset.plugins.PluginSet.failures`).

    Thread-safe: the documents are built on the API server's thread while
    the reconciler's worker replaces what they read (whole objects, never
    mutated in place).
    """

    def __init__(
        self,
        reconciler: Reconciler,
        cache: CacheState,
        *,
        metrics: Metrics,
        is_leader: Callable[[], bool] = lambda: True,
        configuration: Callable[[], tuple[int, str]] | None = None,
        last_reload: Callable[[], LastReload | None] = lambda: None,
    ) -> None:
        self.reconciler = reconciler
        self.cache = cache
        self.metrics = metrics
        self.is_leader = is_leader
        self.configuration = configuration or self._initial_configuration
        self.last_reload = last_reload
        self._lock = threading.Lock()
        # The verdicts of the last discovery, computed once per cycle when first asked.
        self._verdicts_of: ReconcileOutcome | None = None
        self._verdicts: list[ServiceVerdict] = []

    def _initial_configuration(self) -> tuple[int, str]:
        return 1, self.reconciler.engine.config.source

    # -- /api/v1/statistics --------------------------------------------------------

    def statistics(self) -> dict[str, Any]:
        """The statistics document (see ``docs/api.md``)."""
        engine = self.reconciler.engine
        last = self.reconciler.last_discovery
        cycle = last.cycle if last is not None else None
        found = cycle.discovery.detectors if cycle is not None else {}
        checked = cycle.checked if cycle is not None else ()
        detectors = {
            name: {
                "enabled": config.enabled,
                "services": found[name].found if name in found else 0,
                "success_rate": success_rate(name, checked),
            }
            for name, config in sorted(engine.config.detectors.items())
        }
        outcome = self.reconciler.last_outcome
        generation, source = self.configuration()
        # The reconciler's checker of the moment: a reload may have replaced it.
        health = self.reconciler.health
        return {
            "discoveries_total": int(
                self.metrics.value("dynamic_toolset_discovery_duration_seconds_count")
            ),
            "services_discovered": len(cycle.discovery.discovered) if cycle is not None else 0,
            "detectors": detectors,
            "last_discovery": rfc3339(last.finished_at) if last is not None else None,
            "is_leader": bool(self.is_leader()),
            "synced": bool(self.cache.synced),
            "last_reconcile": None
            if outcome is None
            else {
                "result": outcome.result,
                "time": rfc3339(outcome.finished_at),
                "error_type": outcome.error_type,
                "error": outcome.error,
            },
            "config": {
                "generation": generation,
                "source": source,
                "reloads": {
                    result: int(
                        self.metrics.value(
                            "dynamic_toolset_config_reloads_total", {"result": result}
                        )
                    )
                    for result in RELOAD_RESULTS
                },
                "last_reload": _reload_document(self.last_reload()),
            },
            "plugin_load_errors": [
                {"plugin": f.plugin, "distribution": f.distribution, "error": str(f)}
                for f in engine.plugins.failures
            ],
            "health_checks": None if health is None else _health_document(health.statistics()),
        }

    # -- /api/v1/services -------------------------------------------------------------

    def verdicts(self) -> tuple[ReconcileOutcome | None, list[ServiceVerdict]]:
        """The last discovery and its verdicts (computed at most once per cycle)."""
        last = self.reconciler.last_discovery
        with self._lock:
            if last is not self._verdicts_of:
                cycle: Cycle | None = last.cycle if last is not None else None
                self._verdicts = service_verdicts(cycle) if cycle is not None else []
                self._verdicts_of = last
            return last, self._verdicts

    def services(
        self,
        *,
        namespace: str | None = None,
        detector: str | None = None,
        verdict: str | None = None,
    ) -> dict[str, Any]:
        """The services document, filtered (see ``docs/api.md``)."""
        last, verdicts = self.verdicts()
        rows = [
            _service_row(v)
            for v in verdicts
            if (namespace is None or v.namespace == namespace)
            and (detector is None or v.detector == detector)
            and (verdict is None or v.verdict == verdict)
        ]
        counts = dict.fromkeys(SERVICE_VERDICTS, 0)
        for row in rows:
            counts[row["verdict"]] += 1
        return {
            "last_discovery": rfc3339(last.finished_at) if last is not None else None,
            "counts": counts,
            "services": rows,
        }


def _reload_document(last: LastReload | None) -> dict[str, Any] | None:
    if last is None:
        return None
    return {
        "time": rfc3339(last.time),
        "result": last.result,
        "trigger": last.trigger,
        "problems": list(last.problems),
    }


def _health_document(stats: HealthStats) -> dict[str, Any]:
    document = attrs.asdict(stats)
    document["last_round_seconds"] = round(stats.last_round_seconds, 4)
    return document


def _service_row(verdict: ServiceVerdict) -> dict[str, Any]:
    found = verdict.discovered
    health = found.health if found is not None else None
    return {
        "namespace": verdict.namespace,
        "name": verdict.name,
        "detector": verdict.detector,
        "verdict": verdict.verdict,
        "detail": verdict.detail,
        "type": found.type if found is not None else None,
        "endpoint": found.endpoint if found is not None else None,
        "toolsets": [t.kind for t in found.toolsets] if found is not None else [],
        "last_health_check": None
        if health is None
        else {
            "time": rfc3339(health.checked_at),
            "result": health.reason,
            "healthy": health.healthy,
            "detail": health.detail,
            "consecutive_failures": health.consecutive_failures,
        },
    }


# -- routes ---------------------------------------------------------------------------


def _query_problem(request: web.Request, allowed: Sequence[str]) -> web.Response | None:
    """A 400 problem for an unknown, repeated or empty query parameter, else ``None``."""
    for key in request.query:
        if key not in allowed:
            known = ", ".join(allowed) if allowed else "none"
            return _bad_request(
                request, f"unknown query parameter {key!r}; this endpoint takes: {known}"
            )
        values = request.query.getall(key)
        if len(values) > 1:
            return _bad_request(request, f"query parameter {key!r} is given {len(values)} times")
        if not values[0]:
            return _bad_request(request, f"query parameter {key!r} is empty")
    return None


def _bad_request(request: web.Request, detail: str) -> web.Response:
    return problem(request, 400, "Bad Request", detail)


def status_routes(source: ControllerStatus) -> list[web.RouteDef]:
    """``GET /api/v1/statistics`` and ``GET /api/v1/services``, built by ``source``.

    Mounted by the API server behind authentication (action ``read``).
    """

    async def statistics(request: web.Request) -> web.Response:
        bad = _query_problem(request, ())
        if bad is not None:
            return bad
        return web.json_response(source.statistics())

    async def services(request: web.Request) -> web.Response:
        bad = _query_problem(request, SERVICE_FILTERS)
        if bad is not None:
            return bad
        query = request.query
        verdict = query.get("verdict")
        if verdict is not None and verdict not in SERVICE_VERDICTS:
            return _bad_request(
                request,
                f"unknown verdict {verdict!r}; one of: {', '.join(SERVICE_VERDICTS)}",
            )
        return web.json_response(
            source.services(
                namespace=query.get("namespace"), detector=query.get("detector"), verdict=verdict
            )
        )

    return [
        web.get("/api/v1/statistics", statistics, allow_head=False),
        web.get("/api/v1/services", services, allow_head=False),
    ]


def _asset(name: str) -> bytes:
    return (
        resources.files(__package__ or "dyntoolset.controller") / "status_page" / name
    ).read_bytes()


def page_routes() -> list[web.RouteDef]:
    """``GET /status`` (the page) and its script and style sheet; ``GET /`` redirects to it.

    Static files with no data in them: served without authentication, with
    :data:`PAGE_HEADERS`. Read once, here.
    """
    bodies = {name: _asset(name) for name in _ASSETS}

    def serve(name: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(
                body=bodies[name],
                content_type=_ASSETS[name],
                charset="utf-8",
                headers=dict(PAGE_HEADERS),
            )

        return handler

    async def root(request: web.Request) -> web.Response:
        raise web.HTTPFound("/status")

    return [
        web.get("/status", serve("index.html")),
        web.get("/status/status.js", serve("status.js")),
        web.get("/status/status.css", serve("status.css")),
        web.get("/", root, allow_head=False),
    ]
