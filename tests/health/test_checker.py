"""Rounds: cache, hysteresis, concurrency, deadline, SSRF (no packet leaves), emission."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from dyntoolset.config import GlobalHealthChecks
from dyntoolset.health import HealthChecker, check_offline, select_healthy
from dyntoolset.metrics import Metrics
from dyntoolset.model import Discovered, HealthStatus
from tests.health._servers import (
    Backend,
    BlackHole,
    ConnectSpy,
    FakeResolver,
    discovered,
    options,
    settings,
    status,
)

NAME = "prom.monitoring.svc.cluster.local"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def checker(
    *,
    resolver: FakeResolver | None = None,
    connect: ConnectSpy | None = None,
    timeout: float = 1.0,
    retries: int = 0,
    clock: FakeClock | None = None,
    metrics: Metrics | None = None,
    **opts: Any,
) -> HealthChecker:
    return HealthChecker(
        options(**opts),
        {"prometheus": settings(timeout, retries), "custom": settings(timeout, retries)},
        resolver=resolver or FakeResolver({NAME: ["127.0.0.1"]}),
        connect=connect or ConnectSpy(),
        clock=clock or time.monotonic,
        metrics=metrics,
        rng=random.Random(3),
        backoff_base=0.02,
        backoff_max=0.05,
    )


def health(results: list[Discovered]) -> HealthStatus:
    (item,) = results
    assert item.health is not None
    return item.health


# -- cache and hysteresis ---------------------------------------------------------


def test_results_are_cached_for_the_ttl(backend: Callable[..., Backend]) -> None:
    server = backend(status(200))
    clock = FakeClock()
    c = checker(clock=clock, cache_ttl=60.0)
    item = discovered(port=server.port)
    first = health(c.check([item]))
    clock.now += 59
    assert health(c.check([item])) == first
    assert len(server.requests) == 1
    assert c.statistics().last_round_cached == 1
    clock.now += 2
    c.check([item])
    assert len(server.requests) == 2


def test_hysteresis_keeps_a_known_service_until_the_threshold(
    backend: Callable[..., Backend],
) -> None:
    server = backend(status(200))
    clock = FakeClock()
    metrics = Metrics()
    c = checker(clock=clock, cache_ttl=1.0, failure_threshold=3, metrics=metrics)
    item = discovered(port=server.port)
    assert health(c.check([item])).healthy
    assert health(c.check([item])).consecutive_failures == 0

    server.script = status(500)
    for failure in (1, 2):
        clock.now += 2
        h = health(c.check([item]))
        # Still in the toolsets; the reason shows the probe failed.
        assert (h.healthy, h.reason, h.consecutive_failures) == (True, "http_status", failure)
        assert f"failure {failure} of 3" in h.detail
        assert select_healthy(c.check([item])) == [attrs.evolve(item, health=h)]
    clock.now += 2
    h = health(c.check([item]))
    assert (h.healthy, h.reason, h.consecutive_failures) == (False, "http_status", 3)
    assert select_healthy([attrs.evolve(item, health=h)]) == []
    assert (
        metrics.value(
            "dynamic_toolset_health_check_failures_total",
            {"detector": "prometheus", "reason": "http_status"},
        )
        == 3
    )

    # A dropped service needs one success to come back, and the count starts over.
    server.script = status(200)
    clock.now += 2
    h = health(c.check([item]))
    assert (h.healthy, h.consecutive_failures) == (True, 0)


def test_one_lost_probe_does_not_flap(backend: Callable[..., Backend]) -> None:
    server = backend(status(200))
    clock = FakeClock()
    c = checker(clock=clock, cache_ttl=1.0, failure_threshold=2)
    item = discovered(port=server.port)
    outcomes = []
    for code in (200, 500, 200, 500, 200):
        server.script = status(code)
        clock.now += 2
        outcomes.append(health(c.check([item])).healthy)
    assert outcomes == [True] * 5


def test_a_new_service_needs_one_success(backend: Callable[..., Backend]) -> None:
    server = backend(status(500))
    c = checker(failure_threshold=5)
    h = health(c.check([discovered(port=server.port)]))
    assert (h.healthy, h.reason) == (False, "http_status")


def test_a_repointed_endpoint_starts_over(backend: Callable[..., Backend]) -> None:
    good, bad = backend(status(200)), backend(status(500))
    clock = FakeClock()
    c = checker(clock=clock, cache_ttl=100.0, failure_threshold=3)
    assert health(c.check([discovered(port=good.port)])).healthy
    # Same Service, new port: not a cached result, and no credit from the old endpoint.
    assert not health(c.check([discovered(port=bad.port)])).healthy


def test_state_of_vanished_services_is_forgotten(backend: Callable[..., Backend]) -> None:
    server = backend(status(200))
    c = checker(failure_threshold=3)
    item = discovered(port=server.port)
    c.check([item])
    c.check([])
    server.script = status(500)
    # Back again: treated as new, so one failure is enough to leave it out.
    assert not health(c.check([item])).healthy


def test_a_reloaded_checker_inherits_state(backend: Callable[..., Backend]) -> None:
    server = backend(status(200))
    clock = FakeClock()
    old = checker(clock=clock, cache_ttl=60.0, failure_threshold=2)
    item = discovered(port=server.port)
    old.check([item])
    new = checker(clock=clock, cache_ttl=60.0, failure_threshold=2)
    new.inherit(old)
    assert health(new.check([item])).healthy
    assert len(server.requests) == 1  # the cached result carried over
    server.script = status(500)
    clock.now += 61
    assert health(new.check([item])).healthy  # 1 of 2 failures: kept, as before the reload


def test_disabled_checks_leave_health_unset(backend: Callable[..., Backend]) -> None:
    server = backend(status(500))
    (item,) = checker(enabled=False).check([discovered(port=server.port)])
    assert item.health is None and server.requests == []
    assert select_healthy([item]) == [item]


def test_select_healthy_and_include_unhealthy() -> None:
    ok = attrs.evolve(discovered("a"), health=HealthStatus(True, "ok", 1.0))
    bad = attrs.evolve(discovered("b"), health=HealthStatus(False, "timeout", 1.0))
    unknown = discovered("c")
    assert select_healthy([ok, bad, unknown]) == [ok, unknown]
    assert select_healthy([ok, bad, unknown], include_unhealthy=True) == [ok, bad, unknown]


# -- SSRF: nothing leaves the process ----------------------------------------------


@pytest.mark.parametrize(
    "endpoint, health_path, allowed_hosts",
    [
        ("http://169.254.169.254", "/latest/meta-data/", ("*",)),
        ("http://[::ffff:169.254.169.254]", "/", ("*",)),
        ("http://0xA9FEA9FE", "/", ("*",)),
        ("http://2852039166", "/", ("*",)),
        ("http://localhost:10250", "/pods", ("*",)),
        ("file:///etc/passwd", "/", ("*",)),
        ("gopher://prom.monitoring.svc.cluster.local:9090", "/_x", ()),
        ("http://prom.monitoring.svc.cluster.local:9090", "@169.254.169.254/", ()),
        ("http://prom.monitoring.svc.cluster.local:9090", "/../../admin", ()),
        ("http://evil.example", "/", ()),
    ],
)
def test_ssrf_cases_send_nothing(
    endpoint: str, health_path: str, allowed_hosts: tuple[str, ...]
) -> None:
    resolver, spy, metrics = FakeResolver({"evil.example": ["10.0.0.1"]}), ConnectSpy(), Metrics()
    c = checker(
        resolver=resolver,
        connect=spy,
        metrics=metrics,
        allowed_networks=(),
        allowed_hosts=allowed_hosts,
        retries=3,
    )
    h = health(c.check([discovered(endpoint=endpoint, health_path=health_path, detector="custom")]))
    assert (h.healthy, h.reason) == (False, "blocked")
    assert spy.calls == [] and resolver.calls == []  # no connection, not even a DNS query
    assert (
        metrics.value(
            "dynamic_toolset_health_check_failures_total",
            {"detector": "custom", "reason": "blocked"},
        )
        == 1
    )


def test_loopback_is_blocked_without_the_allow_list(
    black_hole: Callable[..., BlackHole],
) -> None:
    hole = black_hole()
    spy = ConnectSpy()
    c = checker(connect=spy, allowed_networks=())
    h = health(c.check([discovered(port=hole.port)]))
    assert (h.healthy, h.reason) == (False, "blocked")
    assert "loopback" in h.detail
    assert spy.calls == []
    assert not hole.saw_connection()


@pytest.mark.parametrize("answer", ["127.0.0.1", "::ffff:127.0.0.1", "169.254.169.254"])
def test_allow_listed_name_resolving_to_a_blocked_address(
    black_hole: Callable[..., BlackHole], answer: str
) -> None:
    hole = black_hole()
    resolver, spy = FakeResolver({"attacker.example": [answer]}), ConnectSpy()
    c = checker(resolver=resolver, connect=spy, allowed_networks=(), allowed_hosts=("*.example",))
    item = discovered(endpoint=f"http://attacker.example:{hole.port}", detector="custom")
    assert health(c.check([item])).reason == "blocked"
    assert resolver.calls == ["attacker.example"] and spy.calls == []
    assert not hole.saw_connection()


def test_annotation_endpoint_must_stay_on_the_services_own_name(
    backend: Callable[..., Backend],
) -> None:
    server = backend(status(200))
    other = "grafana.monitoring.svc.cluster.local"
    resolver, spy = FakeResolver({NAME: ["127.0.0.1"], other: ["127.0.0.1"]}), ConnectSpy()
    c = checker(resolver=resolver, connect=spy)
    own = discovered(port=server.port, detector="custom")
    foreign = discovered("prom2", endpoint=f"http://{other}:{server.port}", detector="custom")
    results = c.check([own, foreign])
    assert [r.health.reason for r in results if r.health] == ["ok", "blocked"]
    assert len(server.requests) == 1


# -- parallelism and the round's deadline ------------------------------------------


def test_concurrency_is_bounded(backend: Callable[..., Backend]) -> None:
    server = backend()
    # Nothing is answered until four requests wait at once: fewer in parallel
    # and the round times out; more, and max_waiting counts them.
    server.script = server.gathered(4, hold=0.15)
    names = {f"s{i}.monitoring.svc.cluster.local": ["127.0.0.1"] for i in range(16)}
    c = checker(resolver=FakeResolver(names), concurrency=4, timeout=20.0, deadline=60.0)
    results = c.check([discovered(f"s{i}", port=server.port) for i in range(16)])
    assert all(r.health and r.health.healthy for r in results)
    assert server.max_waiting == 4
    assert len(server.requests) == 16


def test_many_black_holed_endpoints_finish_within_the_deadline(
    backend: Callable[..., Backend], black_hole: Callable[..., BlackHole]
) -> None:
    """1,000 endpoints, a tenth black-holed: the round ends within its deadline.

    Serially the black holes alone would take 100 x 2 attempts x 0.5 s = 100 s.
    """
    server = backend(status(200))
    holes = [black_hole(backlog=1) for _ in range(100)]
    items, mapping = [], {}
    for i in range(1000):
        name = f"svc{i}"
        mapping[f"{name}.monitoring.svc.cluster.local"] = ["127.0.0.1"]
        port = holes[i // 10].port if i % 10 == 0 else server.port
        items.append(discovered(name, port=port))
    metrics = Metrics()
    deadline = 8.0
    c = checker(
        resolver=FakeResolver(mapping),
        timeout=0.5,
        retries=1,
        concurrency=64,
        deadline=deadline,
        metrics=metrics,
    )
    started = time.monotonic()
    results = c.check(items)
    elapsed = time.monotonic() - started
    assert elapsed < deadline, elapsed
    reasons = [r.health.reason if r.health else None for r in results]
    assert reasons.count("ok") == 900
    assert all(reasons[i] == "timeout" for i in range(0, 1000, 10))
    stats = c.statistics()
    assert (stats.healthy, stats.unhealthy, stats.last_round_checked) == (900, 100, 1000)
    assert not stats.last_round_deadline_exceeded
    assert (
        metrics.value(
            "dynamic_toolset_health_check_failures_total",
            {"detector": "prometheus", "reason": "timeout"},
        )
        == 100
    )


def test_deadline_cuts_a_round_short(black_hole: Callable[..., BlackHole]) -> None:
    hole = black_hole(backlog=128)
    mapping = {f"h{i}.monitoring.svc.cluster.local": ["127.0.0.1"] for i in range(40)}
    metrics = Metrics()
    c = checker(
        resolver=FakeResolver(mapping),
        timeout=60.0,
        retries=2,
        concurrency=4,
        deadline=0.5,
        metrics=metrics,
    )
    threads_before = threading.active_count()
    started = time.monotonic()
    results = c.check([discovered(f"h{i}", port=hole.port) for i in range(40)])
    elapsed = time.monotonic() - started
    # Ends at its 0.5 s deadline, not after the first attempts' 60 s timeout
    # (let alone 10 batches x 3 attempts): a bound far from both.
    assert elapsed < 20, elapsed
    statuses = [r.health for r in results]
    assert all(s is not None and not s.healthy and s.reason == "timeout" for s in statuses)
    details = [s.detail for s in statuses if s]
    # The four in flight were cut (or timed out at the same instant); the rest never started.
    assert details.count("not checked before the round's deadline") == 36
    stats = c.statistics()
    assert stats.last_round_deadline_exceeded
    assert (stats.last_round_checked, stats.last_round_not_started) == (4, 36)
    assert metrics.value("dynamic_toolset_health_check_deadline_exceeded_total") == 1
    # In-flight attempts were cut (sockets shut down): the workers end promptly.
    give_up = time.monotonic() + 20  # uncut, they would wait out their 60 s timeout
    while threading.active_count() > threads_before and time.monotonic() < give_up:
        time.sleep(0.02)
    assert threading.active_count() <= threads_before


def test_unchecked_services_keep_their_previous_result(
    backend: Callable[..., Backend],
) -> None:
    server = backend(status(200))
    mapping = {f"k{i}.monitoring.svc.cluster.local": ["127.0.0.1"] for i in range(6)}
    clock = FakeClock()
    c = checker(
        resolver=FakeResolver(mapping), clock=clock, cache_ttl=1.0, concurrency=1, deadline=5.0
    )
    items = [discovered(f"k{i}", port=server.port) for i in range(6)]
    assert all(r.health and r.health.healthy for r in c.check(items))
    server.script = server.slow(0.4)
    c.options = attrs.evolve(c.options, deadline=0.6)
    clock.now += 2
    results = c.check(items)
    # One check finished, one was cut; the other four were not started and keep "ok".
    assert sum(1 for r in results if r.health and r.health.reason == "ok") >= 4
    assert all(r.health and r.health.healthy for r in results)  # hysteresis: 1 of 3


# -- configuration -----------------------------------------------------------------


def test_ac_038_01_settings_take_effect(backend: Callable[..., Backend]) -> None:
    """The seed's example (path /-/healthy, timeout 5s, retries 3) drives the checks."""
    from dyntoolset.config import parse_config

    raw, problems = parse_config(
        "detectors:\n  prometheus:\n    enabled: true\n    priority: 1\n    health_check:\n"
        '      path: "/-/healthy"\n      timeout: 5s\n      retries: 3\n'
    )
    assert raw is not None and not problems and raw.detectors is not None
    per_detector = {name: block.health_check for name, block in raw.detectors.items()}
    assert (per_detector["prometheus"].timeout, per_detector["prometheus"].retries) == (5.0, 3)
    server = backend(status(503))
    c = HealthChecker(
        options(),
        per_detector,
        resolver=FakeResolver({NAME: ["127.0.0.1"]}),
        backoff_base=0.01,
        backoff_max=0.02,
    )
    assert health(c.check([discovered(port=server.port)])).reason == "http_status"
    assert len(server.requests) == 4  # 1 + retries: 3
    assert {r.path for r in server.requests} == {"/-/healthy"}


def test_invalid_options_are_reported() -> None:
    with pytest.raises(ValueError, match="allowed_networks"):
        HealthChecker(GlobalHealthChecks(allowed_networks=("not-a-cidr",)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ca_file"):
        HealthChecker(GlobalHealthChecks(ca_file="/nonexistent/ca.pem"))
    with pytest.raises(ValueError, match="apiserver-proxy"):
        HealthChecker(GlobalHealthChecks(mode="apiserver-proxy"))


def test_check_offline_uses_direct_mode(backend: Callable[..., Backend]) -> None:
    from dyntoolset.config import Config

    server = backend(status(200))
    config = Config(
        cluster_domain="cluster.local",
        resync_interval=300.0,
        output=None,  # type: ignore[arg-type]
        health_checks=options(mode="apiserver-proxy"),
        detectors={},
    )
    (item,) = check_offline(
        [discovered(port=server.port)], config, resolver=FakeResolver({NAME: ["127.0.0.1"]})
    )
    assert item.health is not None and item.health.reason == "ok"


def test_ipv6_loopback_is_blocked_unless_allowed(black_hole: Callable[..., BlackHole]) -> None:
    import socket

    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        listener.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    listener.listen(4)
    port = listener.getsockname()[1]
    try:
        spy = ConnectSpy()
        c = checker(resolver=FakeResolver({NAME: ["::1"]}), connect=spy, timeout=0.2)
        assert health(c.check([discovered(port=port)])).reason == "blocked"
        assert spy.calls == []
        c = checker(
            resolver=FakeResolver({NAME: ["::1"]}),
            connect=spy,
            timeout=0.2,
            allowed_networks=("::1/128",),
        )
        # Allowed: it connects (and times out: the listener never answers).
        assert health(c.check([discovered(port=port)])).reason == "timeout"
        assert spy.calls == [("::1", port)]
    finally:
        listener.close()


# -- SSRF end to end: a listening loopback socket on the target sees nothing -------


@pytest.mark.parametrize(
    "endpoint, health_path",
    [
        ("http://@127.0.0.1:{port}", "/"),
        ("http://prom.monitoring.svc.cluster.local:{port}@127.0.0.1:{port}", "/"),
        ("http://prom.monitoring.svc.cluster.local:{port}", "/%2e%2e/%2e%2e/admin"),
        ("http://prom.monitoring.svc.cluster.local:{port}", "/.%2E/admin"),
        ("http://0x7f000001:{port}", "/"),
        ("http://localhost:{port}", "/"),
        ("http://127.1:{port}", "/"),
        # A zone identifier is refused by the host rule, whatever the allow-lists say.
        ("http://[fe80::1%25lo]:{port}", "/"),
        ("http://[::1%25lo]:{port}", "/"),
    ],
)
def test_refused_targets_never_reach_a_listener(
    black_hole: Callable[..., BlackHole], endpoint: str, health_path: str
) -> None:
    hole = black_hole()
    resolver, spy = FakeResolver({NAME: ["127.0.0.1"]}), ConnectSpy()
    c = checker(
        resolver=resolver,
        connect=spy,
        allowed_hosts=("*",),
        # Even with the targets' ranges allowed, the URL rules alone refuse these.
        allowed_networks=("127.0.0.0/8", "::1/128", "fe80::/10"),
    )
    item = discovered(endpoint=endpoint.format(port=hole.port), health_path=health_path)
    h = health(c.check([item]))
    assert (h.healthy, h.reason) == (False, "blocked"), h
    assert spy.calls == [] and resolver.calls == []
    assert not hole.saw_connection()


def test_a_name_resolving_to_a_good_and_a_metadata_address_is_refused(
    black_hole: Callable[..., BlackHole],
) -> None:
    hole = black_hole()
    resolver, spy = FakeResolver({NAME: ["127.0.0.1", "169.254.169.254"]}), ConnectSpy()
    c = checker(resolver=resolver, connect=spy, retries=2)
    h = health(c.check([discovered(port=hole.port)]))
    assert (h.healthy, h.reason) == (False, "blocked")
    assert "169.254.169.254" in h.detail
    assert resolver.calls == [NAME] and spy.calls == []  # resolved once, never dialled
    assert not hole.saw_connection()


def test_the_default_concurrency_checks_a_large_fan_out_at_once(
    backend: Callable[..., Backend],
) -> None:
    """Issue 15, workload 6: with the default configuration, 200 slow checks are in
    flight together (a black-holed endpoint holds its worker for the whole
    timeout, so a round lasts one check only if they all get a worker at once).

    Counted, not timed: nothing is answered until 200 requests wait at once.
    """
    assert GlobalHealthChecks().concurrency >= 200
    server = backend()
    server.script = server.gathered(200, hold=0.05)
    names = {f"s{i}.monitoring.svc.cluster.local": ["127.0.0.1"] for i in range(220)}
    c = checker(resolver=FakeResolver(names), timeout=10.0, deadline=30.0)
    results = c.check([discovered(f"s{i}", port=server.port) for i in range(220)])
    assert [r.health.reason for r in results if r.health] == ["ok"] * 220
    assert server.max_waiting >= 200
