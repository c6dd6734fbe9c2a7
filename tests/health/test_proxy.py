"""apiserver-proxy mode through the Kubernetes API emulator's service proxy."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from dyntoolset.config import DetectorHealthCheck, GlobalHealthChecks
from dyntoolset.health import HealthChecker
from dyntoolset.kube.proxy import ApiServerProxyTransport, health_transport
from dyntoolset.metrics import Metrics
from dyntoolset.model import Discovered, HealthStatus
from dyntoolset.testing.apiserver import ApiServer
from tests.health._servers import (
    Backend,
    ConnectSpy,
    FakeResolver,
    closed_port,
    discovered,
    options,
    reply,
    settings,
    status,
)

PROXY_PATH = "/api/v1/namespaces/monitoring/services/prom:9090/proxy/-/healthy"


def add_service(
    api: ApiServer, name: str = "prom", namespace: str = "monitoring", port: int = 9090
) -> None:
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"name": "http", "port": port}]},
        }
    )


def proxied_checker(
    opts: GlobalHealthChecks,
    per_detector: dict[str, DetectorHealthCheck],
    api_client: Any,
    **kwargs: Any,
) -> HealthChecker:
    """A checker whose transport is the API server's proxy, as the controller builds it."""
    return HealthChecker(opts, per_detector, transport=health_transport(opts, api_client), **kwargs)


def check(
    api: ApiServer,
    item: Discovered,
    *,
    api_client: Any = None,
    timeout: float = 1.0,
    retries: int = 0,
    resolver: FakeResolver | None = None,
    connect: ConnectSpy | None = None,
    metrics: Metrics | None = None,
    **opts: Any,
) -> HealthStatus:
    checker = proxied_checker(
        options(mode="apiserver-proxy", **opts),
        {item.detector: settings(timeout, retries)},
        api_client or api.api_client,
        resolver=resolver or FakeResolver(),
        connect=connect or ConnectSpy(),
        metrics=metrics,
        rng=random.Random(5),
        backoff_base=0.02,
        backoff_max=0.05,
    )
    assert checker.mode == "apiserver-proxy"
    (result,) = checker.check([item])
    assert result.health is not None
    return result.health


def proxied(api: ApiServer) -> list[Any]:
    return [r for r in api.requests if "/proxy" in r.path]


def test_healthy_through_the_proxy(apiserver: ApiServer, backend: Callable[..., Backend]) -> None:
    server = backend(status(200))
    add_service(apiserver)
    apiserver.register_proxy("monitoring", "prom", 9090, f"http://127.0.0.1:{server.port}")
    resolver, spy = FakeResolver(), ConnectSpy()
    health = check(apiserver, discovered(), resolver=resolver, connect=spy)
    assert (health.healthy, health.reason) == (True, "ok")
    assert [r.path for r in proxied(apiserver)] == [PROXY_PATH]
    assert [r.method for r in server.requests] == ["GET"]
    assert server.requests[0].path == "/-/healthy"
    # Out of cluster: no lookup of *.svc.cluster.local and no direct connection.
    assert resolver.calls == [] and spy.calls == []


def test_credentials_go_to_the_api_server(
    apiserver_factory: Callable[..., ApiServer], backend: Callable[..., Backend]
) -> None:
    api = apiserver_factory(tokens={"s3cret": "dyntoolset"})
    server = backend(status(200))
    add_service(api)
    api.register_proxy("monitoring", "prom", 9090, f"http://127.0.0.1:{server.port}")
    assert check(api, discovered()).reason == "ok"
    (record,) = proxied(api)
    assert record.user == "dyntoolset"
    # The token authenticates us to the API server; the backend never sees it.
    assert "authorization" not in server.requests[0].headers

    # A client the API server rejects: reported, not mistaken for the backend's answer.
    bad = api.new_api_client("wrong-token")
    try:
        health = check(api, discovered(), api_client=bad, retries=2)
    finally:
        bad.close()
    assert (health.healthy, health.reason) == (False, "http_status")
    assert "API server refused" in health.detail and "401" in health.detail
    assert len(proxied(api)) == 2  # 401 is not retried


def test_500_is_retried_exactly(apiserver: ApiServer, backend: Callable[..., Backend]) -> None:
    server = backend(status(500, b"down"))
    add_service(apiserver)
    apiserver.register_proxy("monitoring", "prom", 9090, f"http://127.0.0.1:{server.port}")
    metrics = Metrics()
    health = check(apiserver, discovered(), retries=2, metrics=metrics)
    assert (health.reason, health.detail) == ("http_status", "HTTP 500: down")
    assert len(server.requests) == 3 and len(proxied(apiserver)) == 3
    assert (
        metrics.value(
            "dynamic_toolset_health_check_failures_total",
            {"detector": "prometheus", "reason": "http_status"},
        )
        == 1
    )


def test_backend_refusing_connections(apiserver: ApiServer) -> None:
    add_service(apiserver)
    apiserver.register_proxy("monitoring", "prom", 9090, f"http://127.0.0.1:{closed_port()}")
    health = check(apiserver, discovered(), retries=1)
    # The proxy's own 503 "error trying to reach service" is a connection failure.
    assert (health.healthy, health.reason) == (False, "connection_refused")
    assert len(proxied(apiserver)) == 2


def test_service_without_endpoints(apiserver: ApiServer) -> None:
    add_service(apiserver)
    health = check(apiserver, discovered())
    assert health.reason == "connection_refused"
    assert "no endpoints" in health.detail


def test_hanging_backend_times_out(apiserver: ApiServer, backend: Callable[..., Backend]) -> None:
    server = backend()
    server.script = server.hang
    add_service(apiserver)
    apiserver.register_proxy("monitoring", "prom", 9090, f"http://127.0.0.1:{server.port}")
    health = check(apiserver, discovered(), timeout=0.3, retries=1)
    assert health.reason == "timeout"
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "endpoint, health_path",
    [
        ("http://grafana.monitoring.svc.cluster.local:3000", "/-/healthy"),
        ("http://prom.monitoring.svc.cluster.local:9090", "/../../../api/v1/secrets"),
        ("http://prom.monitoring.svc.cluster.local:9090", "/%2e%2e/%2e%2e/api/v1/secrets"),
        ("gopher://prom.monitoring.svc.cluster.local:9090", "/"),
    ],
)
def test_refused_checks_send_nothing_to_the_api_server(
    apiserver: ApiServer, endpoint: str, health_path: str
) -> None:
    add_service(apiserver)
    before = len(apiserver.requests)
    health = check(
        apiserver, discovered(endpoint=endpoint, health_path=health_path, detector="custom")
    )
    assert health.reason == "blocked"
    assert len(apiserver.requests) == before


def test_allow_listed_foreign_host_is_checked_directly(
    apiserver: ApiServer, backend: Callable[..., Backend]
) -> None:
    # The API server can only proxy to the Service itself; an allow-listed
    # external endpoint is reached directly, under the address guards.
    server = backend(status(200))
    resolver, spy = FakeResolver({"grafana.example.com": ["127.0.0.1"]}), ConnectSpy()
    item = discovered(endpoint=f"http://grafana.example.com:{server.port}", detector="custom")
    health = check(
        apiserver, item, resolver=resolver, connect=spy, allowed_hosts=("*.example.com",)
    )
    assert health.reason == "ok"
    assert spy.calls == [("127.0.0.1", server.port)]
    assert proxied(apiserver) == []


def test_https_services_use_the_scheme_prefix(apiserver: ApiServer) -> None:
    from dyntoolset.health.guard import build_target

    item = discovered(port=8443, scheme="https", health_path="/api/health")
    prepared = ApiServerProxyTransport(apiserver.api_client).prepare(
        item, build_target(item, item.health_path)
    )
    assert prepared.proxy_path == (
        "/api/v1/namespaces/monitoring/services/https:prom:8443/proxy/api/health"
    )


# -- a misbehaving answer on the proxy's path -----------------------------------------
# The API server streams the backend's body as it comes, so a backend that drips
# its body (or stalls after the headers) reaches the checker through the proxy.
# A loopback HTTP server posing as the API server plays that part here.


def _fake_api_client(server: Backend) -> Any:
    import kubernetes

    configuration = kubernetes.client.Configuration(host=f"http://127.0.0.1:{server.port}")
    configuration.retries = False
    return kubernetes.client.ApiClient(configuration)


def _headers_then(server: Backend, interval: float, size: int = 100_000) -> Any:
    """200 with a ``size``-byte Content-Length, then one body byte every ``interval``
    seconds (never, when ``interval`` is 0: the body stalls)."""

    def script(_i: int, handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        handler.wfile.flush()
        while not server.stopping.wait(interval or 30):
            handler.wfile.write(b"x")
            handler.wfile.flush()

    return script


def _health_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name.startswith("health-check")]


def _wait_for_no_health_threads(seconds: float = 20.0) -> list[str]:
    import time

    deadline = time.monotonic() + seconds
    while _health_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return _health_threads()


def test_a_dripping_body_through_the_proxy_cannot_stretch_the_timeout(
    backend: Callable[..., Backend],
) -> None:
    import time

    server = backend()
    server.script = _headers_then(server, 0.05)
    client = _fake_api_client(server)
    try:
        checker = proxied_checker(
            options(mode="apiserver-proxy", deadline=60.0),
            {"prometheus": settings(0.5, 0)},
            client,
        )
        started = time.monotonic()
        (result,) = checker.check([discovered()])
        elapsed = time.monotonic() - started
    finally:
        client.close()
    assert result.health is not None
    # The status is the verdict; the body is read best effort within the attempt.
    assert result.health.reason == "ok", result.health
    assert not checker.statistics().last_round_deadline_exceeded
    # One attempt of 0.5 s; the round's 60 s deadline must not be what ended it.
    assert elapsed < 30


def test_a_stalled_body_through_the_proxy_is_no_internal_error(
    backend: Callable[..., Backend], caplog: pytest.LogCaptureFixture
) -> None:
    server = backend()
    server.script = _headers_then(server, 0)
    client = _fake_api_client(server)
    try:
        checker = proxied_checker(
            options(mode="apiserver-proxy"), {"prometheus": settings(0.3, 0)}, client
        )
        with caplog.at_level("ERROR"):
            (result,) = checker.check([discovered()])
    finally:
        client.close()
    assert result.health is not None
    # As in direct mode: the status arrived in time, the body is best effort.
    assert result.health.reason == "ok", result.health
    assert "internal error" not in result.health.detail
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_no_worker_outlives_a_round_cut_during_a_dripping_body(
    backend: Callable[..., Backend],
) -> None:
    import time

    server = backend()
    server.script = _headers_then(server, 0.05)
    client = _fake_api_client(server)
    try:
        assert _wait_for_no_health_threads() == []
        checker = proxied_checker(
            options(mode="apiserver-proxy", deadline=0.5),
            {"prometheus": settings(30.0, 0)},
            client,
        )
        started = time.monotonic()
        (result,) = checker.check([discovered()])
        # The round's 0.5 s deadline, not the attempt's 30 s timeout.
        assert time.monotonic() - started < 20
        assert result.health is not None
        # Cut by the round ("timeout"), or its status counted when the attempt's own
        # deadline (the round's) ended the best-effort body read an instant earlier.
        assert result.health.reason in ("timeout", "ok"), result.health
        # The attempt's socket is shut down or its reads bounded: the worker ends.
        assert _wait_for_no_health_threads() == []
    finally:
        client.close()


def test_302_to_metadata_through_the_proxy_is_not_followed(
    apiserver: ApiServer, backend: Callable[..., Backend]
) -> None:
    from tests.health._servers import reply

    server = backend(lambda _i, h: reply(h, 302, b"", {"Location": "http://169.254.169.254/"}))
    add_service(apiserver)
    apiserver.register_proxy("monitoring", "prom", 9090, f"http://127.0.0.1:{server.port}")
    health = check(apiserver, discovered(), retries=2)
    assert (health.healthy, health.reason) == (False, "http_status")
    assert "302" in health.detail and "169.254.169.254" in health.detail
    assert len(server.requests) == 1  # a 3xx is not retried, and not followed
    assert [r.path for r in proxied(apiserver)] == [PROXY_PATH]


def test_1gb_body_through_the_proxy_is_cut_by_the_cap(
    apiserver: ApiServer, backend: Callable[..., Backend]
) -> None:
    import time

    server = backend()
    server.script = server.huge(200)
    add_service(apiserver)
    apiserver.register_proxy("monitoring", "prom", 9090, f"http://127.0.0.1:{server.port}")
    started = time.monotonic()
    health = check(apiserver, discovered(), timeout=60.0, max_body_bytes=65536)
    assert (health.healthy, health.reason) == (True, "ok")
    assert time.monotonic() - started < 30  # ended by the cap, not by the 60 s timeout
    server.stop()  # ends the backend's writing loop so bytes_sent is final
    # The API server streams the body; the checker stops reading at the cap, so
    # what was sent is what socket buffers along the way absorbed, far from 1 GiB.
    give_up = time.monotonic() + 20
    while server.in_flight and time.monotonic() < give_up:
        time.sleep(0.02)
    assert server.in_flight == 0
    assert 0 < server.bytes_sent < 64 * 1024 * 1024


def test_a_parallel_round_fits_the_connection_pool(
    apiserver: ApiServer, backend: Callable[..., Backend], caplog: pytest.LogCaptureFixture
) -> None:
    # The client's pool holds cpu_count * 5 connections by default (10 on a 2-core
    # machine), fewer than a round's concurrency (16 here): urllib3 then discards
    # connections with a WARNING each, every round.
    api_client = apiserver.new_api_client()
    api_client.configuration.connection_pool_maxsize = 4
    api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = 4
    server = backend(status(200))
    items = []
    for i in range(24):
        add_service(apiserver, f"s{i}")
        apiserver.register_proxy("monitoring", f"s{i}", 9090, f"http://127.0.0.1:{server.port}")
        items.append(discovered(f"s{i}"))
    checker = proxied_checker(
        options(mode="apiserver-proxy", concurrency=16),
        {"prometheus": settings(2.0, 0)},
        api_client,
    )
    try:
        with caplog.at_level("WARNING", logger="urllib3"):
            results = checker.check(items)
    finally:
        api_client.close()
    assert {r.health.reason for r in results if r.health} == {"ok"}
    assert [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")] == []


def test_tcp_checks_are_not_made_through_the_proxy(apiserver: ApiServer) -> None:
    """The service proxy speaks only HTTP: a TCP check is included unchecked, saying
    why, and nothing is dialled, neither directly nor through the API server."""
    import attrs

    add_service(apiserver, "kafka", "kafka", 9092)
    resolver, spy = FakeResolver(), ConnectSpy()
    item = attrs.evolve(discovered("kafka", "kafka", 9092, detector="kafka"), health_check="tcp")
    health = check(apiserver, item, resolver=resolver, connect=spy)
    assert (health.healthy, health.reason) == (True, "unchecked")
    assert health.detail == (
        "not checked: a TCP check cannot be made through the API server's proxy "
        "(health_checks.mode apiserver-proxy)"
    )
    assert resolver.calls == [] and spy.calls == []
    assert [r for r in apiserver.requests if "proxy" in r.path] == []


def _held(server: Backend, release: Any) -> Any:
    """Hold every request until ``release`` is set, then answer 200; counts the
    requests waiting in ``server.waiting`` / ``server.max_waiting``."""

    def script(_i: int, handler: Any) -> None:
        with server.lock:
            server.waiting += 1
            server.max_waiting = max(server.max_waiting, server.waiting)
        while not release.wait(0.05) and not server.stopping.is_set():
            pass
        with server.lock:
            server.waiting -= 1
        reply(handler, 200)

    return script


def test_proxy_connections_cap_the_connections_to_the_api_server(
    apiserver: ApiServer, backend: Callable[..., Backend]
) -> None:
    """A fan-out wider than ``proxy_connections`` opens no more connections to the
    API server than that: the other workers wait for a slot, then all succeed."""
    import threading
    import time

    release = threading.Event()
    server = backend()
    server.script = _held(server, release)
    items = []
    for i in range(30):
        add_service(apiserver, f"s{i}")
        apiserver.register_proxy("monitoring", f"s{i}", 9090, f"http://127.0.0.1:{server.port}")
        items.append(discovered(f"s{i}"))
    api_client = apiserver.new_api_client()
    before = apiserver.open_connections
    checker = proxied_checker(
        options(mode="apiserver-proxy", concurrency=30, proxy_connections=5, deadline=60.0),
        {"prometheus": settings(30.0, 0)},
        api_client,
    )
    results: list[Discovered] = []
    worker = threading.Thread(target=lambda: results.extend(checker.check(items)))
    worker.start()
    try:
        give_up = time.monotonic() + 20
        while server.waiting < 5 and time.monotonic() < give_up:
            time.sleep(0.02)
        # Every held request keeps its connection open; give any surplus worker
        # ample time to open one more (without the cap, all 30 arrive at once).
        time.sleep(0.5)
        held, open_now = server.waiting, apiserver.open_connections - before
    finally:
        release.set()
        worker.join(30)
        api_client.close()
    assert (held, open_now) == (5, 5)
    assert server.max_waiting == 5
    assert not worker.is_alive()
    assert [r.health.reason for r in results if r.health] == ["ok"] * 30
    assert len(server.requests) == 30


def test_a_round_cut_while_checks_wait_for_a_connection_frees_its_workers(
    apiserver: ApiServer, backend: Callable[..., Backend]
) -> None:
    """Workers waiting for one of ``proxy_connections`` end with the round's deadline."""
    server = backend()
    server.script = server.hang
    items = []
    for i in range(3):
        add_service(apiserver, f"s{i}")
        apiserver.register_proxy("monitoring", f"s{i}", 9090, f"http://127.0.0.1:{server.port}")
        items.append(discovered(f"s{i}"))
    assert _wait_for_no_health_threads() == []
    checker = proxied_checker(
        options(mode="apiserver-proxy", concurrency=3, proxy_connections=1, deadline=0.5),
        {"prometheus": settings(30.0, 0)},
        apiserver.api_client,
    )
    results = checker.check(items)
    # One attempt held the connection and was cut; the two waiting never reached
    # the service: every one is a timeout, none a success or an internal error.
    assert [(r.health.healthy, r.health.reason) for r in results if r.health] == [
        (False, "timeout")
    ] * 3
    assert len(server.requests) <= 1
    assert _wait_for_no_health_threads() == []


def test_the_transport_takes_its_cap_from_proxy_connections(apiserver: ApiServer) -> None:
    transport = health_transport(
        options(mode="apiserver-proxy", concurrency=100, proxy_connections=7),
        apiserver.api_client,
    )
    assert transport is not None and transport.max_connections == 7
    default = health_transport(options(mode="apiserver-proxy"), apiserver.api_client)
    assert default is not None and default.max_connections == 32
    with pytest.raises(ValueError, match="max_connections must be at least 1, not 0"):
        ApiServerProxyTransport(apiserver.api_client, max_connections=0)


def test_a_check_that_gets_its_connection_after_the_cut_sends_nothing(
    apiserver: ApiServer, backend: Callable[..., Backend]
) -> None:
    """The slot an attempt frees as the round is cut goes to no new request: the
    waiting check sees the cancellation once it holds the slot, and gives it back."""
    import threading
    import time

    from dyntoolset.health.guard import build_target
    from dyntoolset.health.probe import Cancellation, ProbeFailure

    release = threading.Event()
    server = backend()
    server.script = _held(server, release)
    transport = ApiServerProxyTransport(apiserver.api_client, max_connections=1)
    prepared = []
    for name in ("first", "second"):
        add_service(apiserver, name)
        apiserver.register_proxy("monitoring", name, 9090, f"http://127.0.0.1:{server.port}")
        item = discovered(name)
        prepared.append(transport.prepare(item, build_target(item, "/-/healthy")))
    answers: list[Any] = []
    failures: list[ProbeFailure] = []
    holder = threading.Thread(
        target=lambda: answers.append(transport.fetch(prepared[0], 10.0, Cancellation()))
    )
    holder.start()
    wait_for_held = time.monotonic() + 20
    while server.waiting < 1 and time.monotonic() < wait_for_held:
        time.sleep(0.02)
    cancel = Cancellation()

    def waiter() -> None:
        try:
            answers.append(transport.fetch(prepared[1], 10.0, cancel))
        except ProbeFailure as exc:
            failures.append(exc)

    waiting = threading.Thread(target=waiter)
    waiting.start()
    time.sleep(0.2)  # the second check is waiting for the one slot
    # The round is cut, and the attempt holding the slot ends at that moment.
    cancel.cancel()
    release.set()
    holder.join(20)
    waiting.join(20)
    assert [answer.status for answer in answers] == [200]
    assert [(f.reason, f.detail) for f in failures] == [
        ("timeout", "cycle deadline reached waiting for an API server connection")
    ]
    assert len(server.requests) == 1
    # The slot was given back: the transport still serves the next round.
    assert transport.fetch(prepared[1], 10.0, Cancellation()).status == 200
