"""Direct mode against real loopback servers: outcomes, retries, caps, TLS."""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dyntoolset.health import HealthChecker, backoff_delay
from dyntoolset.metrics import Metrics
from dyntoolset.model import Discovered, HealthStatus
from tests.health._servers import (
    Backend,
    BlackHole,
    ConnectSpy,
    FakeResolver,
    closed_port,
    discovered,
    options,
    sequence,
    settings,
    status,
)

NAME = "prom.monitoring.svc.cluster.local"


def run(
    item: Discovered,
    *,
    timeout: float = 1.0,
    retries: int = 0,
    resolver: FakeResolver | None = None,
    connect: ConnectSpy | None = None,
    metrics: Metrics | None = None,
    **opts: Any,
) -> HealthStatus:
    checker = HealthChecker(
        options(**opts),
        {item.detector: settings(timeout, retries)},
        resolver=resolver or FakeResolver({NAME: ["127.0.0.1"]}),
        connect=connect or ConnectSpy(),
        metrics=metrics,
        rng=random.Random(1),
        backoff_base=0.05,
        backoff_max=0.2,
    )
    (result,) = checker.check([item])
    assert result.health is not None
    return result.health


def test_healthy(backend: Callable[..., Backend]) -> None:
    server = backend(status(200))
    before = time.time()
    health = run(discovered(port=server.port))
    assert (health.healthy, health.reason) == (True, "ok")
    assert health.checked_at >= before
    (request,) = server.requests
    assert (request.method, request.path) == ("GET", "/-/healthy")
    assert request.headers["host"] == f"{NAME}:{server.port}"
    # Nothing that could carry credentials is sent to a discovered host.
    assert not {"authorization", "cookie", "proxy-authorization"} & set(request.headers)


@pytest.mark.parametrize("code", [200, 204, 299])
def test_any_2xx_is_healthy(backend: Callable[..., Backend], code: int) -> None:
    assert run(discovered(port=backend(status(code)).port)).reason == "ok"


def test_500_is_retried_exactly_with_backoff(backend: Callable[..., Backend]) -> None:
    server = backend(status(500, b"boom"))
    metrics = Metrics()
    health = run(discovered(port=server.port), retries=2, metrics=metrics)
    assert (health.healthy, health.reason) == (False, "http_status")
    assert health.detail.startswith("HTTP 500: boom")
    assert len(server.requests) == 3  # 1 + retries, exactly
    # Exponential backoff with 50-100 % jitter: gaps of at least 25 ms then 50 ms.
    gaps = [b.at - a.at for a, b in zip(server.requests, server.requests[1:], strict=False)]
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05, gaps
    # One failed *check* is one count, whatever the attempts; labels: detector and reason only.
    assert (
        metrics.value(
            "dynamic_toolset_health_check_failures_total",
            {"detector": "prometheus", "reason": "http_status"},
        )
        == 1
    )
    assert (
        metrics.value(
            "dynamic_toolset_health_checks_total",
            {"detector": "prometheus", "result": "http_status"},
        )
        == 1
    )


def test_recovers_within_retries(backend: Callable[..., Backend]) -> None:
    server = backend(sequence(503, 503, 200))
    health = run(discovered(port=server.port), retries=3)
    assert (health.healthy, health.reason) == (True, "ok")
    assert len(server.requests) == 3


@pytest.mark.parametrize("code", [400, 401, 403, 404])
def test_4xx_is_not_retried(backend: Callable[..., Backend], code: int) -> None:
    server = backend(status(code))
    assert run(discovered(port=server.port), retries=3).reason == "http_status"
    assert len(server.requests) == 1


def test_429_is_retried(backend: Callable[..., Backend]) -> None:
    server = backend(sequence(429, 200))
    assert run(discovered(port=server.port), retries=1).reason == "ok"
    assert len(server.requests) == 2


def test_slow_but_within_timeout(backend: Callable[..., Backend]) -> None:
    server = backend()
    server.script = server.slow(0.2)
    assert run(discovered(port=server.port), timeout=2.0).reason == "ok"


def test_slow_beyond_timeout_is_a_timeout(backend: Callable[..., Backend]) -> None:
    server = backend()
    server.script = server.slow(60.0)
    started = time.monotonic()
    health = run(discovered(port=server.port), timeout=0.2, retries=1)
    assert (health.healthy, health.reason) == (False, "timeout")
    assert len(server.requests) == 2
    # Two attempts of 0.2 s, not the server's 60 s answer: a bound far from both.
    assert time.monotonic() - started < 20


def test_hanging_server(backend: Callable[..., Backend]) -> None:
    server = backend()
    server.script = server.hang
    started = time.monotonic()
    health = run(discovered(port=server.port), timeout=0.3, retries=2)
    elapsed = time.monotonic() - started
    assert health.reason == "timeout"
    assert len(server.requests) == 3
    # Each attempt waited out its 0.3 s (a lower bound cannot flake: a busy
    # machine only adds time), and none waited for the server, which hangs 30 s.
    assert elapsed >= 0.9, elapsed
    assert elapsed < 20, elapsed


def test_dripping_headers_cannot_stretch_the_timeout(backend: Callable[..., Backend]) -> None:
    server = backend()
    # ~230 bytes at 5 bytes/s: 46 s in total, though every read gets a byte
    # well within the 0.4 s timeout.
    server.script = server.drip(0.2)
    started = time.monotonic()
    health = run(discovered(port=server.port), timeout=0.4)
    assert health.reason == "timeout"
    # One 0.4 s attempt, not the 46 s of dripping: a bound far from both.
    assert time.monotonic() - started < 20


def test_black_hole_times_out(black_hole: Callable[..., BlackHole]) -> None:
    hole = black_hole()
    health = run(discovered(port=hole.port), timeout=0.2, retries=1)
    assert health.reason == "timeout"


def test_connection_refused_counts_attempts() -> None:
    spy = ConnectSpy()
    health = run(discovered(port=closed_port()), retries=2, connect=spy)
    assert (health.healthy, health.reason) == (False, "connection_refused")
    assert len(spy.calls) == 3


def test_dns_failure_is_not_retried() -> None:
    resolver, spy = FakeResolver({}), ConnectSpy()
    health = run(discovered(), retries=3, resolver=resolver, connect=spy)
    assert (health.healthy, health.reason) == (False, "dns")
    assert resolver.calls == [NAME]  # resolved once
    assert spy.calls == []


def test_302_to_metadata_is_not_followed(backend: Callable[..., Backend]) -> None:
    server = backend(status(302))
    server.script = lambda _i, h: _redirect(h, "http://169.254.169.254/latest/meta-data/")
    spy = ConnectSpy()
    health = run(discovered(port=server.port), retries=2, connect=spy)
    assert (health.healthy, health.reason) == (False, "http_status")
    assert "302" in health.detail and "169.254.169.254" in health.detail
    assert len(server.requests) == 1  # 3xx is not retried either
    assert spy.calls == [("127.0.0.1", server.port)]


def test_302_to_a_loopback_listener_sends_nothing_there(
    backend: Callable[..., Backend], black_hole: Callable[..., BlackHole]
) -> None:
    hole = black_hole()
    server = backend()
    server.script = lambda _i, h: _redirect(h, f"http://127.0.0.1:{hole.port}/")
    health = run(discovered(port=server.port), redirects_are_healthy=True)
    # Counted as healthy when configured so, but still not followed.
    assert (health.healthy, health.reason) == (True, "ok")
    assert "not followed" in health.detail
    assert not hole.saw_connection()


def _redirect(handler: Any, location: str) -> None:
    from tests.health._servers import reply

    reply(handler, 302, b"", {"Location": location})


@pytest.mark.parametrize("code, reason", [(200, "ok"), (500, "http_status")])
def test_1gb_body_is_cut_by_the_cap(
    backend: Callable[..., Backend], code: int, reason: str
) -> None:
    server = backend()
    server.script = server.huge(code)
    started = time.monotonic()
    health = run(discovered(port=server.port), timeout=60.0, max_body_bytes=65536)
    assert health.reason == reason
    assert time.monotonic() - started < 30  # ended by the cap, not by the 60 s timeout
    assert len(health.detail) < 300
    # The server's count is final once its handler has seen the client leave.
    give_up = time.monotonic() + 20
    while server.in_flight and time.monotonic() < give_up:
        time.sleep(0.01)
    assert server.in_flight == 0
    # The server got to write at most what socket buffers absorb, far from 1 GiB.
    assert 0 < server.bytes_sent < 64 * 1024 * 1024


def test_tls_self_signed_is_refused_by_default(
    backend: Callable[..., Backend], tls_server_context: ssl.SSLContext
) -> None:
    server = backend(status(200), tls=tls_server_context)
    health = run(discovered(port=server.port, scheme="https"), retries=2)
    assert (health.healthy, health.reason) == (False, "tls")
    assert "certificate" in health.detail.lower()


def test_tls_with_configured_ca(
    backend: Callable[..., Backend],
    tls_server_context: ssl.SSLContext,
    certificate: tuple[Path, Path],
) -> None:
    server = backend(status(200), tls=tls_server_context)
    health = run(discovered(port=server.port, scheme="https"), ca_file=str(certificate[1]))
    assert (health.healthy, health.reason) == (True, "ok")
    assert server.requests[0].headers["host"] == f"{NAME}:{server.port}"


def test_tls_name_mismatch(
    backend: Callable[..., Backend],
    tls_server_context: ssl.SSLContext,
    certificate: tuple[Path, Path],
) -> None:
    server = backend(status(200), tls=tls_server_context)
    other = "graf.monitoring.svc.cluster.local"
    item = discovered("graf", port=server.port, scheme="https")
    health = run(item, ca_file=str(certificate[1]), resolver=FakeResolver({other: ["127.0.0.1"]}))
    assert health.reason == "tls"


def test_tls_to_plain_http_server(backend: Callable[..., Backend]) -> None:
    server = backend(status(200))
    assert run(discovered(port=server.port, scheme="https")).reason == "tls"


def test_garbage_answer_is_a_connection_error(black_hole: Callable[..., BlackHole]) -> None:
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        health = run(discovered(port=listener.getsockname()[1]))
    finally:
        listener.close()
    assert health.reason == "connection_error"


def test_backoff_delay_doubles_caps_and_jitters() -> None:
    rng = random.Random(7)
    for retry, full in enumerate([0.2, 0.4, 0.8, 1.6, 2.0, 2.0]):
        for _ in range(50):
            assert full / 2 <= backoff_delay(retry, 0.2, 2.0, rng) <= full
    values = {round(backoff_delay(3, 0.2, 2.0, rng), 6) for _ in range(20)}
    assert len(values) > 10  # jittered, not a fixed schedule


def _endless(server: Backend, line: bytes, repeat: bytes) -> Any:
    """Send ``line`` then ``repeat`` over and over, as fast as the client reads."""

    def script(_i: int, handler: Any) -> None:
        handler.wfile.write(line)
        sent = len(line)
        try:
            while not server.stopping.is_set() and sent < 64 * 1024 * 1024:
                handler.wfile.write(repeat)
                sent += len(repeat)
        finally:
            with server.lock:
                server.bytes_sent += sent

    return script


@pytest.mark.parametrize(
    "line, repeat",
    [
        (b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 4096),  # one header that never ends
        (b"HTTP/1.1 200 OK\r\n", b"X-More: y\r\n" * 64),  # headers that never end
        (b"HTTP/1.1 200 ", b"O" * 4096),  # a status line that never ends
    ],
)
def test_an_endless_header_is_cut(
    backend: Callable[..., Backend], line: bytes, repeat: bytes
) -> None:
    server = backend()
    server.script = _endless(server, line, repeat)
    started = time.monotonic()
    health = run(discovered(port=server.port), timeout=60.0, retries=1)
    # Refused by the parser's line and header limits ("connection_error", not
    # "timeout"), long before the two 60 s attempts could time out.
    assert health.reason == "connection_error", health
    assert time.monotonic() - started < 60
    assert len(server.requests) == 2  # retried once, as a connection error is


def test_a_stalled_tls_handshake_times_out(black_hole: Callable[..., BlackHole]) -> None:
    hole = black_hole()  # the TCP connection completes (backlog); no ServerHello ever comes
    started = time.monotonic()
    health = run(discovered(port=hole.port, scheme="https"), timeout=0.3, retries=1)
    assert (health.healthy, health.reason) == (False, "timeout"), health
    assert time.monotonic() - started < 20  # two attempts of 0.3 s, not a hang
    assert hole.saw_connection()
