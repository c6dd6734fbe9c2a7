"""TCP and ``none`` health checks: real loopback sockets, the same SSRF guards."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Iterator

import attrs
import pytest

from dyntoolset.health import HealthChecker
from dyntoolset.metrics import Metrics
from dyntoolset.model import Discovered, HealthStatus
from tests.health._servers import (
    BlackHole,
    ConnectSpy,
    FakeResolver,
    closed_port,
    discovered,
    options,
    settings,
)

NAME = "kafka-bootstrap.kafka.svc.cluster.local"


def tcp_item(port: int, **kwargs: str) -> Discovered:
    item = discovered("kafka-bootstrap", "kafka", port, detector="kafka", **kwargs)  # type: ignore[arg-type]
    return attrs.evolve(item, health_check="tcp")


def run(
    item: Discovered,
    *,
    resolver: FakeResolver | None = None,
    connect: ConnectSpy | None = None,
    timeout: float = 1.0,
    retries: int = 0,
    metrics: Metrics | None = None,
    **opts: object,
) -> HealthStatus:
    checker = HealthChecker(
        options(**opts),
        {"kafka": settings(timeout, retries)},
        resolver=resolver or FakeResolver({NAME: ["127.0.0.1"]}),
        connect=connect or ConnectSpy(),
        metrics=metrics,
        rng=random.Random(1),
        backoff_base=0.01,
        backoff_max=0.02,
    )
    (result,) = checker.check([item])
    assert result.health is not None
    return result.health


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def test_an_open_port_is_healthy_and_nothing_is_sent(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    spy = ConnectSpy()
    health = run(tcp_item(port), connect=spy)
    assert (health.healthy, health.reason) == (True, "ok")
    assert health.detail == f"TCP connect to {NAME}:{port}"
    assert spy.calls == [("127.0.0.1", port)]
    conn, _ = listener.accept()
    conn.settimeout(5)
    assert conn.recv(100) == b""  # closed without a byte: not even an HTTP request
    conn.close()


def test_a_closed_port_is_refused_and_retried() -> None:
    port = closed_port()
    spy, metrics = ConnectSpy(), Metrics()
    health = run(tcp_item(port), connect=spy, retries=2, metrics=metrics)
    assert (health.healthy, health.reason) == (False, "connection_refused")
    assert len(spy.calls) == 3
    sample = metrics.health_check_failures.labels(detector="kafka", reason="connection_refused")
    assert sample._value.get() == 1  # one failed check, three attempts


def test_a_black_holed_port_times_out(black_hole: Callable[..., BlackHole]) -> None:
    # A listener that never accepts, its queue filled: further SYNs are dropped.
    hole = black_hole(backlog=0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", hole.port))
        fillers.append(filler)
    try:
        health = run(tcp_item(hole.port), timeout=0.5)
    finally:
        for filler in fillers:
            filler.close()
    assert (health.healthy, health.reason) == (False, "timeout")


def test_the_address_guards_apply_before_any_connection() -> None:
    resolver = FakeResolver({NAME: ["169.254.169.254"]})
    spy = ConnectSpy()
    health = run(tcp_item(9092), resolver=resolver, connect=spy, allowed_networks=())
    assert (health.healthy, health.reason) == (False, "blocked")
    assert "169.254.169.254 is link-local" in health.detail
    assert spy.calls == []


def test_only_the_services_own_name_is_dialled(listener: socket.socket) -> None:
    # An endpoint naming another host (an annotation, an override) is not
    # where a TCP check goes: it checks the Service itself.
    port = listener.getsockname()[1]
    resolver = FakeResolver({NAME: ["127.0.0.1"], "elsewhere.example": ["127.0.0.1"]})
    item = tcp_item(port, endpoint="http://elsewhere.example:80")
    health = run(item, resolver=resolver)
    assert health.healthy
    assert resolver.calls == [NAME]


def test_kind_none_is_included_unchecked_without_a_packet() -> None:
    resolver, spy, metrics = FakeResolver(), ConnectSpy(), Metrics()
    item = attrs.evolve(tcp_item(9092), health_check="none")
    health = run(item, resolver=resolver, connect=spy, metrics=metrics)
    assert (health.healthy, health.reason) == (True, "unchecked")
    assert health.detail == "not checked: its health check kind is 'none'"
    assert resolver.calls == [] and spy.calls == []
    counted = metrics.health_checks.labels(detector="kafka", result="unchecked")
    assert counted._value.get() == 1


def test_the_kind_comes_from_the_detector_and_the_configuration_overrides_it() -> None:
    from dyntoolset import Engine
    from dyntoolset.config import load_config_text
    from dyntoolset.plugin import DetectContext, Detector, NoSettings, Service
    from dyntoolset.testing import make_plugin_set, make_service, run_detector

    class KafkaLike(Detector[NoSettings]):
        name = "kafka"
        health_check = "tcp"

        def detect(self, service: Service, ctx: DetectContext[NoSettings]) -> Discovered | None:
            return self.discovered(service, service.ports[0], ctx)

    svc = make_service("kafka-bootstrap", "kafka", ports=[(9092, "tcp-clients")])
    found = run_detector(KafkaLike, svc)
    assert found is not None and found.health_check == "tcp"
    found = run_detector(KafkaLike, svc, health_check="none")
    assert found is not None and found.health_check == "none"

    plugins = make_plugin_set(KafkaLike, builtin_detectors=False)
    for text, expected in [
        ("", "tcp"),
        ("detectors: {kafka: {health_check: {kind: none}}}", "none"),
        ("detectors: {kafka: {health_check: {kind: http, path: /healthz}}}", "http"),
    ]:
        engine = Engine(load_config_text(text, "<test>", plugins), plugins)
        (item,) = engine.discover([svc]).discovered
        assert item.health_check == expected, text


def test_an_unknown_kind_is_refused_in_the_configuration_and_in_a_plugin() -> None:
    from dyntoolset.config import load_config_text
    from dyntoolset.errors import ConfigError, PluginLoadError
    from dyntoolset.plugin import Detector, NoSettings
    from dyntoolset.testing import make_plugin_set

    with pytest.raises(ConfigError) as info:
        load_config_text(
            "detectors: {prometheus: {health_check: {kind: udp}}}", "<test>", make_plugin_set()
        )
    assert [str(p) for p in info.value.problems] == [
        "$.detectors.prometheus.health_check.kind: expected one of 'http', 'tcp', 'none', got 'udp'"
    ]

    class Udp(Detector[NoSettings]):
        name = "udp"
        health_check = "udp"

        def detect(self, service: object, ctx: object) -> None:
            return None

    with pytest.raises(
        PluginLoadError, match=r"Udp\.health_check must be one of 'http', 'tcp', 'none', got 'udp'"
    ):
        make_plugin_set(Udp)  # type: ignore[arg-type]
