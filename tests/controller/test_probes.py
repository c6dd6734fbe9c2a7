"""The probe and metrics servers, through real HTTP requests."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from dyntoolset.controller.probes import Check, ProbeServer, parse_listen
from dyntoolset.metrics import Metrics

LOOPBACK = ("127.0.0.1", 0)


def request(
    address: tuple[str, int], path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, str, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read(), response
    finally:
        conn.close()


def body(raw: bytes) -> Any:
    return json.loads(raw)


class State:
    def __init__(self) -> None:
        self.live: list[Check] = [Check("reconciler", True)]
        self.ready: list[Check] = [Check("cache_synced", False, "waiting for the first list")]
        self.raise_in_ready = False

    def liveness(self) -> Sequence[Check]:
        return self.live

    def readiness(self) -> Sequence[Check]:
        if self.raise_in_ready:
            raise RuntimeError("secret internals")
        return self.ready


@pytest.fixture
def state() -> State:
    return State()


@pytest.fixture
def server(state: State) -> Iterator[ProbeServer]:
    metrics = Metrics()
    metrics.configmap_reconciliations.labels(result="success").inc()
    probes = ProbeServer(
        metrics,
        listen=LOOPBACK,
        metrics_listen=LOOPBACK,
        liveness=state.liveness,
        readiness=state.readiness,
    )
    probes.start()
    yield probes
    probes.stop()


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_listen(":9090") == ("0.0.0.0", 9090)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    assert parse_listen("localhost:0") == ("localhost", 0)
    for bad in ("8080", "host:", "host:99999", "[::1:80", "a:b"):
        with pytest.raises(ValueError, match="expected HOST:PORT"):
            parse_listen(bad)


def test_health_is_200_while_the_loops_run_and_503_when_one_died(
    server: ProbeServer, state: State
) -> None:
    status, ctype, raw, _ = request(server.addresses["probes"], "/health")
    assert (status, ctype) == (200, "application/json; charset=utf-8")
    assert body(raw) == {"status": "ok", "checks": {"reconciler": {"ok": True, "detail": ""}}}
    state.live = [Check("reconciler", False, "the reconciler thread exited")]
    status, _, raw, _ = request(server.addresses["probes"], "/health")
    assert status == 503
    assert body(raw)["checks"]["reconciler"]["detail"] == "the reconciler thread exited"


def test_ready_says_why_not_until_every_check_passes(server: ProbeServer, state: State) -> None:
    status, _, raw, _ = request(server.addresses["probes"], "/ready")
    assert status == 503
    assert body(raw) == {
        "status": "not ready",
        "checks": {"cache_synced": {"ok": False, "detail": "waiting for the first list"}},
    }
    state.ready = [Check("cache_synced", True), Check("configuration", True)]
    status, _, raw, _ = request(server.addresses["probes"], "/ready")
    assert status == 200
    assert body(raw)["status"] == "ready"
    # HEAD works too (some probes use it).
    assert request(server.addresses["probes"], "/ready", "HEAD")[0] == 200


def test_ready_is_503_once_shutting_down_while_health_stays_200(
    server: ProbeServer, state: State
) -> None:
    state.ready = [Check("cache_synced", True)]
    server.shutting_down()
    status, _, raw, _ = request(server.addresses["probes"], "/ready")
    assert status == 503
    assert body(raw)["status"] == "shutting down"
    assert request(server.addresses["probes"], "/health")[0] == 200


def test_metrics_are_the_registry_in_prometheus_text_format(server: ProbeServer) -> None:
    status, ctype, raw, _ = request(server.addresses["metrics"], "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain; version=")
    text = raw.decode()
    assert 'dynamic_toolset_configmap_reconciliations_total{result="success"} 1.0' in text
    assert "dynamic_toolset_configmap_drift_detections_total 0.0" in text
    # A scraper asking for OpenMetrics gets it.
    accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
    status, ctype, raw, _ = request(server.addresses["metrics"], "/metrics", headers=accept)
    assert status == 200 and ctype.startswith("application/openmetrics-text")
    assert raw.rstrip().endswith(b"# EOF")


def test_probes_and_metrics_listen_apart(server: ProbeServer) -> None:
    assert server.addresses["probes"] != server.addresses["metrics"]
    status, ctype, raw, _ = request(server.addresses["probes"], "/metrics")
    assert (status, ctype) == (404, "application/problem+json; charset=utf-8")
    assert body(raw)["status"] == 404
    assert request(server.addresses["metrics"], "/ready")[0] == 404


def test_one_address_serves_all_three() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    probes = ProbeServer(Metrics(), listen=("127.0.0.1", port), metrics_listen=("127.0.0.1", port))
    probes.start()
    try:
        address = probes.addresses["probes"]
        assert probes.addresses["metrics"] == address == ("127.0.0.1", port)
        assert [request(address, p)[0] for p in ("/health", "/ready", "/metrics")] == [200] * 3
    finally:
        probes.stop()


def test_errors_are_rfc7807_problems(server: ProbeServer, state: State) -> None:
    address = server.addresses["probes"]
    status, ctype, raw, response = request(address, "/ready", "POST")
    assert (status, ctype) == (405, "application/problem+json; charset=utf-8")
    problem = body(raw)
    assert problem["title"] == "Method Not Allowed"
    assert problem["status"] == 405
    assert "POST /ready" in problem["detail"]
    assert "GET" in (response.getheader("Allow") or "")
    status, _, raw, _ = request(address, "/nope")
    assert status == 404 and body(raw)["type"] == "about:blank"
    state.raise_in_ready = True
    status, ctype, raw, _ = request(address, "/ready")
    assert (status, ctype) == (500, "application/problem+json; charset=utf-8")
    assert b"secret internals" not in raw and b"Traceback" not in raw


def test_a_taken_port_fails_the_start_naming_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        probes = ProbeServer(Metrics(), listen=("127.0.0.1", port), metrics_listen=None)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            probes.start()


def test_stop_closes_the_listeners(state: State) -> None:
    probes = ProbeServer(Metrics(), listen=LOOPBACK, metrics_listen=None)
    probes.start()
    address = probes.addresses["probes"]
    assert "metrics" not in probes.addresses
    assert request(address, "/health")[0] == 200
    probes.stop()
    probes.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        request(address, "/health")
