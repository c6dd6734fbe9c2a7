"""``GET /api/v1/statistics`` and ``GET /api/v1/services`` over real HTTP, from a real
controller stack on the emulator: shapes, every verdict, filters, errors, and that
reading them never triggers a discovery."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from dyntoolset.controller.reload import Reloader, file_reader
from dyntoolset.controller.status import (
    PAGE_HEADERS,
    ControllerStatus,
    page_routes,
    rfc3339,
    status_routes,
    success_rate,
)
from dyntoolset.errors import ConfigError
from dyntoolset.health import HealthStats
from dyntoolset.model import Discovered, HealthStatus, Service
from dyntoolset.testing.apiserver import ApiServer
from tests.controller._status_support import (
    CONFIG,
    MARKUP,
    HttpServer,
    StatusStack,
    make_status_stack,
    serve,
)
from tests.health._servers import Backend
from tests.kube.conftest import StackFactory, engine, make_stack  # noqa: F401 - fixtures

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def http(running: StatusStack) -> Iterator[HttpServer]:
    yield from serve(status_routes(running.status) + page_routes())


def by_key(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{s['namespace']}/{s['name']}": s for s in document["services"]}


# -- statistics -------------------------------------------------------------------------


def test_statistics_has_the_requirements_shape_and_the_controller_state(
    running: StatusStack, http: HttpServer
) -> None:
    code, content_type, stats = http.get_json("/api/v1/statistics")
    assert (code, content_type) == (200, "application/json; charset=utf-8")
    assert list(stats) == [
        "discoveries_total",
        "services_discovered",
        "detectors",
        "last_discovery",
        "is_leader",
        "synced",
        "last_reconcile",
        "config",
        "plugin_load_errors",
        "health_checks",
    ]
    discoveries = running.metrics.value("dynamic_toolset_discovery_duration_seconds_count")
    assert stats["discoveries_total"] == discoveries >= 1
    # prometheus found two (one healthy, one not); everything else none.
    assert stats["services_discovered"] == 2
    detectors = stats["detectors"]
    assert detectors["prometheus"] == {"enabled": True, "services": 2, "success_rate": 0.5}
    assert detectors["grafana"] == {"enabled": True, "services": 0, "success_rate": 1.0}
    # Disabled detectors are listed too.
    assert detectors["jaeger"] == {"enabled": False, "services": 0, "success_rate": 1.0}
    assert set(detectors) == set(running.stack.reconciler.engine.config.detectors)
    assert all(set(d) == {"enabled", "services", "success_rate"} for d in detectors.values())
    last = running.stack.reconciler.last_discovery
    assert last is not None
    assert RFC3339.match(stats["last_discovery"])
    assert stats["last_discovery"] == rfc3339(last.finished_at)
    assert (stats["is_leader"], stats["synced"]) == (True, True)
    # The first reconcile wrote the ConfigMap; a later one may have found nothing to change.
    assert running.stack.reconciler.last_outcome is not None
    assert stats["last_reconcile"]["result"] == running.stack.reconciler.last_outcome.result
    assert stats["last_reconcile"]["result"] in ("success", "unchanged")
    assert stats["last_reconcile"]["error"] is None
    assert RFC3339.match(stats["last_reconcile"]["time"])
    assert stats["config"] == {
        "generation": 3,
        "source": "status-test.yaml",
        "reloads": {"success": 0, "unchanged": 0, "failure": 0},
        "last_reload": None,
    }
    assert stats["plugin_load_errors"] == []
    health = stats["health_checks"]
    assert health["rounds"] >= 1
    assert (health["healthy"], health["unhealthy"]) == (1, 1)
    assert health["by_reason"] == {"connection_refused": 1, "ok": 1}
    assert health["mode"] == "direct"
    assert health["failures"] == {"prometheus": {"connection_refused": health["rounds"]}}


def test_statistics_keep_the_last_discovery_when_a_reconcile_is_skipped(
    running: StatusStack, http: HttpServer
) -> None:
    reconciler = running.stack.reconciler
    discovered = reconciler.last_discovery
    running.leader[0] = False
    assert reconciler.reconcile_now().result == "skipped_not_leader"
    _, _, stats = http.get_json("/api/v1/statistics")
    assert stats["is_leader"] is False
    assert stats["last_reconcile"]["result"] == "skipped_not_leader"
    # The skipped reconcile ran no cycle: the numbers are still the last discovery's.
    assert reconciler.last_discovery is discovered
    assert stats["services_discovered"] == 2
    assert discovered is not None
    assert stats["last_discovery"] == rfc3339(discovered.finished_at)
    _, _, services = http.get_json("/api/v1/services")
    assert len(services["services"]) == 5


def test_statistics_report_a_failed_reconcile_and_plugin_load_errors(
    running: StatusStack, http: HttpServer, apiserver: ApiServer
) -> None:
    reconciler = running.stack.reconciler
    apiserver.fail(403, verb="get", resource="configmaps")
    outcome = reconciler.reconcile_now()
    assert outcome.result == "error"
    from dyntoolset.errors import PluginLoadError

    reconciler.engine.plugins.failures.append(
        PluginLoadError("broken", "dyntoolset-broken 1.0", "ImportError: no module named x")
    )
    _, _, stats = http.get_json("/api/v1/statistics")
    assert stats["last_reconcile"]["result"] == "error"
    assert stats["last_reconcile"]["error_type"] == outcome.error_type == "forbidden"
    assert stats["last_reconcile"]["error"] == outcome.error
    assert stats["plugin_load_errors"] == [
        {
            "plugin": "broken",
            "distribution": "dyntoolset-broken 1.0",
            "error": "plugin 'broken' from dyntoolset-broken 1.0: ImportError: no module named x",
        }
    ]


def test_before_any_discovery_the_documents_say_so(
    apiserver: ApiServer,
    make_stack: StackFactory,  # noqa: F811
    backend: Backend,
) -> None:
    idle = make_status_stack(apiserver, make_stack, backend, start=False)
    stats = idle.status.statistics()
    assert stats["discoveries_total"] == 0
    assert stats["services_discovered"] == 0
    assert stats["last_discovery"] is None
    assert stats["last_reconcile"] is None
    assert stats["synced"] is False
    assert stats["detectors"]["prometheus"] == {
        "enabled": True,
        "services": 0,
        "success_rate": 1.0,
    }
    assert stats["health_checks"]["rounds"] == 0
    assert idle.status.services() == {
        "last_discovery": None,
        "counts": {
            "emitted": 0,
            "unhealthy": 0,
            "namespace_filtered": 0,
            "annotation_filtered": 0,
            "invalid": 0,
        },
        "services": [],
    }


def test_without_a_health_checker_health_checks_is_null(running: StatusStack) -> None:
    running.stack.reconciler.health = None  # health checks off
    plain = ControllerStatus(running.stack.reconciler, running.stack.cache, metrics=running.metrics)
    stats = plain.statistics()
    assert stats["health_checks"] is None
    # The default configuration getter: generation 1, the engine's source.
    assert stats["config"] == {
        "generation": 1,
        "source": "status-test.yaml",
        "reloads": {"success": 0, "unchanged": 0, "failure": 0},
        "last_reload": None,
    }


class OwnHealthCheck:
    """An embedder's own health check: every service healthy, its own statistics."""

    def __init__(self) -> None:
        self.rounds = 0

    def check(self, discovered: Sequence[Discovered]) -> list[Discovered]:
        self.rounds += 1
        return [attrs.evolve(d, health=HealthStatus(True, "ok", 0.0)) for d in discovered]

    def statistics(self) -> HealthStats:
        return HealthStats(
            rounds=self.rounds,
            last_round_seconds=0.25,
            last_round_checked=2,
            healthy=2,
            by_reason={"ok": 2},
            failures={"prometheus": {"timeout": 4}},
            mode="in-house",
        )


def test_a_custom_health_checks_statistics_reach_the_statistics_endpoint(
    running: StatusStack, http: HttpServer
) -> None:
    """Any ``ControllerHealthCheck`` the reconciler runs (here swapped in as a reload
    does) reports its own statistics, not only the built-in ``HealthChecker``."""
    reconciler = running.stack.reconciler
    own = OwnHealthCheck()
    reconciler.apply_config(
        reconciler.engine, health=own, resync_interval=reconciler.resync_interval
    )
    outcome = reconciler.reconcile_now()
    assert outcome.cycle is not None and own.rounds == 1
    code, _, stats = http.get_json("/api/v1/statistics")
    assert code == 200
    assert stats["health_checks"] == {
        "rounds": 1,
        "last_round_seconds": 0.25,
        "last_round_deadline_exceeded": False,
        "last_round_checked": 2,
        "last_round_cached": 0,
        "last_round_not_started": 0,
        "healthy": 2,
        "unhealthy": 0,
        "by_reason": {"ok": 2},
        "failures": {"prometheus": {"timeout": 4}},
        "mode": "in-house",
    }
    # The custom check's verdicts are what the detectors' success rates count.
    assert stats["detectors"]["prometheus"]["success_rate"] == 1.0


def test_statistics_show_the_reloads_counts_and_how_the_last_one_ended(
    running: StatusStack, tmp_path: Path
) -> None:
    reconciler = running.stack.reconciler
    path = tmp_path / "config.yaml"
    moments = iter(datetime(2026, 12, 1, 15, minute, 0, tzinfo=UTC) for minute in (1, 2, 3))
    reloader = Reloader(
        reconciler, file_reader(str(path)), metrics=running.metrics, now=lambda: next(moments)
    )
    status = ControllerStatus(
        reconciler,
        running.stack.cache,
        metrics=running.metrics,
        configuration=lambda: (reloader.generation, reloader.source),
        last_reload=lambda: reloader.last_reload,
    )
    path.write_text(CONFIG)
    assert reloader.reload("file").status == "unchanged"
    assert status.statistics()["config"]["last_reload"] == {
        "time": "2026-12-01T15:01:00Z",
        "result": "unchanged",
        "trigger": "file",
        "problems": [],
    }

    path.write_text(CONFIG.replace("jaeger: {enabled: false}", "jaeger: {enabled: true}"))
    assert reloader.reload("api").status == "success"
    path.write_text("detectors: {prometheus: {priority: many}}\n")
    with pytest.raises(ConfigError):
        reloader.reload("api")
    config = status.statistics()["config"]
    # The failure is the last reload; the configuration it left in force is the applied one.
    assert config == {
        "generation": 2,
        "source": str(path),
        "reloads": {"success": 1, "unchanged": 1, "failure": 1},
        "last_reload": {
            "time": "2026-12-01T15:03:00Z",
            "result": "failure",
            "trigger": "api",
            "problems": ["$.detectors.prometheus.priority: expected int, got 'many'"],
        },
    }
    assert status.statistics()["detectors"]["jaeger"]["enabled"] is True


# -- success_rate -----------------------------------------------------------------------


def found(detector: str, reason: str | None, healthy: bool = True) -> Discovered:
    return Discovered(
        service=Service(name=f"s-{reason}", namespace="n"),
        detector=detector,
        type=detector,
        endpoint="http://s.n.svc.cluster.local:80",
        health_path="/",
        health=None if reason is None else HealthStatus(healthy, reason, 0.0),
    )


def test_success_rate_counts_the_last_checks_of_the_detector_only() -> None:
    assert success_rate("p", []) == 1.0  # nothing found: nothing failed
    # Not checked (checks off, or kind none) is neither success nor failure.
    assert success_rate("p", [found("p", None), found("p", "unchecked")]) == 1.0
    mixed = [
        found("p", "ok"),
        found("p", "ok"),
        # Kept by hysteresis: still healthy, but its last check failed.
        found("p", "timeout", healthy=True),
        found("p", "connection_refused", healthy=False),
        found("p", "unchecked"),
        found("other", "timeout", healthy=False),
    ]
    assert success_rate("p", mixed) == 0.5
    assert success_rate("other", mixed) == 0.0
    assert success_rate("p", [found("p", "ok")] * 2 + [found("p", "dns", False)]) == 0.6667


# -- services ---------------------------------------------------------------------------


def test_services_list_every_verdict_with_its_reason(
    running: StatusStack, http: HttpServer
) -> None:
    code, content_type, document = http.get_json("/api/v1/services")
    assert (code, content_type) == (200, "application/json; charset=utf-8")
    assert document["last_discovery"] == http.get_json("/api/v1/statistics")[2]["last_discovery"]
    rows = by_key(document)
    # Sorted by namespace/name; the Service no detector recognises is not listed.
    assert list(rows) == [
        "default/prometheus",
        "monitoring/grafana",
        "monitoring/prometheus",
        "monitoring/prometheus-down",
        "shop/reports",
    ]
    assert document["counts"] == {
        "emitted": 1,
        "unhealthy": 1,
        "namespace_filtered": 1,
        "annotation_filtered": 1,
        "invalid": 1,
    }
    port = running.backend.port
    emitted = rows["monitoring/prometheus"]
    assert emitted["verdict"] == "emitted"
    assert emitted["detector"] == "prometheus"
    assert emitted["detail"] == ""
    assert emitted["type"] == "prometheus"
    assert emitted["endpoint"] == f"http://prometheus.monitoring.svc.cluster.local:{port}"
    assert emitted["toolsets"] == ["prometheus/metrics"]
    check = emitted["last_health_check"]
    assert (check["result"], check["healthy"], check["consecutive_failures"]) == ("ok", True, 0)
    assert RFC3339.match(check["time"])

    down = rows["monitoring/prometheus-down"]
    assert down["verdict"] == "unhealthy"
    assert down["detail"].startswith("connection_refused: ")
    check = down["last_health_check"]
    assert (check["result"], check["healthy"]) == ("connection_refused", False)
    assert check["consecutive_failures"] >= 1

    filtered = rows["default/prometheus"]
    assert filtered["verdict"] == "namespace_filtered"
    assert filtered["detector"] == "prometheus"
    assert filtered["detail"] == (
        "matches prometheus, but namespace 'default' is not allowed by namespaces ['monitoring']"
    )
    assert (filtered["endpoint"], filtered["last_health_check"]) == (None, None)

    annotated = rows["monitoring/grafana"]
    assert annotated["verdict"] == "annotation_filtered"
    assert annotated["detector"] == "grafana"
    assert annotated["detail"] == (
        "matches grafana, but required annotation clause 'team=obs' of "
        "required_annotations ['team=obs'] is not met"
    )

    invalid = rows["shop/reports"]
    assert invalid["verdict"] == "invalid"
    assert invalid["detector"] == "custom"
    assert "annotation kubernaut.io/toolset-type must be lowercase" in invalid["detail"]
    assert MARKUP[:20] in invalid["detail"]  # the JSON carries it as data; the page escapes it


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?namespace=monitoring", ["grafana", "prometheus", "prometheus-down"]),
        ("?detector=prometheus", ["prometheus", "prometheus", "prometheus-down"]),
        ("?namespace=monitoring&detector=prometheus", ["prometheus", "prometheus-down"]),
        ("?verdict=invalid", ["reports"]),
        ("?namespace=nowhere", []),
        ("?detector=grafana&verdict=emitted", []),
    ],
)
def test_services_filters(http: HttpServer, query: str, expected: list[str]) -> None:
    code, _, document = http.get_json("/api/v1/services" + query)
    assert code == 200
    assert [s["name"] for s in document["services"]] == expected
    assert sum(document["counts"].values()) == len(expected)


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        (
            "/api/v1/services?namespaces=x",
            "unknown query parameter 'namespaces'; this endpoint takes: namespace, detector, verdict",
        ),
        (
            "/api/v1/services?namespace=a&namespace=b",
            "query parameter 'namespace' is given 2 times",
        ),
        ("/api/v1/services?detector=", "query parameter 'detector' is empty"),
        (
            "/api/v1/services?verdict=skipped",
            "unknown verdict 'skipped'; one of: emitted, unhealthy, namespace_filtered, "
            "annotation_filtered, invalid",
        ),
        (
            "/api/v1/statistics?detector=prometheus",
            "unknown query parameter 'detector'; this endpoint takes: none",
        ),
    ],
)
def test_bad_queries_are_400_problems(http: HttpServer, path: str, detail: str) -> None:
    code, content_type, document = http.get_json(path)
    assert (code, content_type) == (400, "application/problem+json; charset=utf-8")
    request_id = document.pop("request_id")
    assert isinstance(request_id, str) and request_id
    assert document == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": detail,
        "instance": path.split("?")[0],
    }


def test_verdicts_are_computed_once_per_cycle(running: StatusStack) -> None:
    first_cycle, first = running.status.verdicts()
    again_cycle, again = running.status.verdicts()
    assert again is first and again_cycle is first_cycle
    running.stack.reconciler.reconcile_now()
    _, fresh = running.status.verdicts()
    assert fresh is not first
    assert [attrs.evolve(v, discovered=None) for v in fresh] == [
        attrs.evolve(v, discovered=None) for v in first
    ]


def test_reading_never_triggers_a_discovery(
    running: StatusStack, http: HttpServer, apiserver: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconciler = running.stack.reconciler  # stopped: no reconcile of its own can run
    # A stopped reconciler ignores triggers and the endpoints could run the engine
    # without the reconciler: every way in to a discovery is recorded.
    asked: list[str] = []
    for owner, name in (
        (reconciler, "trigger"),
        (reconciler, "reconcile_now"),
        (reconciler.engine, "cycle"),
        (reconciler.engine, "discover"),
        (reconciler.engine, "explain"),
        (running.checker, "check"),
    ):
        monkeypatch.setattr(owner, name, lambda *a, _n=name, **k: asked.append(_n))

    def moving_parts() -> tuple[Any, ...]:
        return (
            reconciler.reconciles,
            running.metrics.value("dynamic_toolset_discovery_duration_seconds_count"),
            running.checker.statistics().rounds,
            len(running.backend.requests),
            len([r for r in apiserver.requests if r.verb != "watch"]),
        )

    before = moving_parts()
    for query in ("", "?namespace=monitoring", "?detector=custom", "?verdict=unhealthy"):
        assert http.get_json("/api/v1/services" + query)[0] == 200
        assert http.get_json("/api/v1/statistics")[0] == 200
    assert moving_parts() == before
    assert asked == []


# -- the page's routes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/status", "text/html; charset=utf-8", b'<script src="/status/status.js" defer>'),
        ("/status/status.js", "text/javascript; charset=utf-8", b"textContent"),
        ("/status/status.css", "text/css; charset=utf-8", b"table"),
    ],
)
def test_the_page_and_its_assets_are_served_with_a_csp(
    http: HttpServer, path: str, content_type: str, marker: bytes
) -> None:
    code, headers, body = http.request(path)
    assert (code, headers["Content-Type"]) == (200, content_type)
    assert marker in body
    for name, value in PAGE_HEADERS.items():
        assert headers[name] == value
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"]


def test_the_page_holds_no_data_and_never_uses_inner_html(http: HttpServer) -> None:
    _, _, page = http.request("/status")
    _, _, script = http.request("/status/status.js")
    assert b"prometheus" not in page  # static: the data comes from the API
    assert b"innerHTML" not in script and b"outerHTML" not in script
    assert b"insertAdjacentHTML" not in script and b"document.write" not in script
    assert b"sessionStorage" in script and b"localStorage" not in script


def test_the_root_redirects_to_the_page(http: HttpServer) -> None:
    code, headers, _ = http.request("/")
    assert (code, headers["Location"]) == (302, "/status")
