"""Graceful shutdown of the HTTP API, through real HTTP (issue 11 item 9).

Once shutdown begins, new API requests are 503 while the ones in flight
finish and get their answers; ``/health`` and ``/metrics`` answer until the
listeners close. A request is held in flight by a reloader that waits on an
event: no sleeps, the steps are ordered by events and log records.
"""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from dyntoolset.controller.api import SHUTDOWN_RETRY_AFTER, Api
from dyntoolset.controller.auth import Action, Authenticator, NoAuth, StaticTokens
from dyntoolset.controller.probes import CLOSE_TIMEOUT, Check, ProbeServer
from dyntoolset.controller.status import page_routes
from dyntoolset.metrics import Metrics
from tests.controller._api import (
    LOOPBACK,
    READ_ROUTES,
    RELOAD_DOCUMENT,
    Answer,
    RecordingReloader,
    Report,
    bearer,
    call,
)
from tests.kube._support import wait_for

RELOAD = "/api/v1/config/reload"
PROBLEM = "application/problem+json; charset=utf-8"
PATIENCE = 30.0


class HeldReloader(RecordingReloader):
    """A reload that stays in flight until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def reload(self, trigger: str) -> Report:
        self.entered.set()
        self.release.wait(PATIENCE)
        return super().reload(trigger)


class CountingAuth:
    """An authenticator that records every call (and lets everyone in)."""

    def __init__(self, inner: Authenticator) -> None:
        self.inner = inner
        self.calls = 0

    def authenticate(self, authorization: str | None, action: Action) -> str:
        self.calls += 1
        return self.inner.authenticate(authorization, action)


@attrs.define
class Served:
    probes: ProbeServer
    metrics: Metrics
    api: Api

    @property
    def address(self) -> tuple[str, int]:
        return self.probes.addresses["probes"]

    @property
    def metrics_address(self) -> tuple[str, int]:
        return self.probes.addresses["metrics"]


def serve(authenticator: Authenticator, reloader: RecordingReloader) -> Served:
    metrics = Metrics()
    api = Api(
        authenticator,
        metrics,
        reloader=reloader,
        read_routes=READ_ROUTES,
        open_routes=page_routes(),  # the real status page: open, yet the API's
    )
    probes = ProbeServer(
        metrics,
        listen=LOOPBACK,
        metrics_listen=LOOPBACK,  # port 0: a listener of its own
        readiness=lambda: [Check("cache_synced", True)],
        api=api,
    )
    probes.start()
    return Served(probes, metrics, api)


@pytest.fixture
def reloader() -> Iterator[HeldReloader]:
    held = HeldReloader()
    yield held
    held.release.set()  # never leave an executor thread waiting


@pytest.fixture
def served(reloader: HeldReloader) -> Iterator[Served]:
    server = serve(NoAuth(), reloader)
    yield server
    server.probes.stop()


class InFlight:
    """``POST /api/v1/config/reload`` in a thread of its own: its answer, or what it raised."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.answer: Answer | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._call, args=(address,), daemon=True)
        self.thread.start()

    def _call(self, address: tuple[str, int]) -> None:
        try:
            self.answer = call(address, "POST", RELOAD)
        except (OSError, http.client.HTTPException) as exc:  # what a dropped connection raises
            self.error = exc

    def join(self) -> None:
        self.thread.join(PATIENCE)
        assert not self.thread.is_alive(), "the request never ended"


@pytest.fixture(autouse=True)
def _info_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="dyntoolset")


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [
        r.dyntoolset  # type: ignore[attr-defined]
        for r in list(caplog.records)
        if getattr(r, "dyntoolset", {}).get("event") == name
    ]


def assert_shutting_down(answer: Answer, path: str) -> None:
    assert answer.status == 503
    assert answer.content_type == PROBLEM
    assert answer.headers["Retry-After"] == str(SHUTDOWN_RETRY_AFTER)
    document = answer.json()
    assert document["status"] == 503 and document["instance"] == path
    assert "shutting down" in document["detail"]
    assert document["request_id"] == answer.headers["X-Request-Id"]


def test_a_request_in_flight_finishes_and_new_ones_are_503(
    served: Served, reloader: HeldReloader, caplog: pytest.LogCaptureFixture
) -> None:
    flight = InFlight(served.address)
    assert reloader.entered.wait(PATIENCE)
    served.probes.shutting_down()

    assert_shutting_down(call(served.address, "GET", "/api/v1/statistics"), "/api/v1/statistics")
    assert_shutting_down(call(served.address, "POST", RELOAD), RELOAD)
    assert call(served.address, "GET", "/health").status == 200  # no restart of a stopping Pod
    ready = call(served.address, "GET", "/ready")
    assert ready.status == 503 and ready.json()["status"] == "shutting down"

    # stop() waits for the reload, and the listeners stay open meanwhile.
    stopper = threading.Thread(target=served.probes.stop, args=(PATIENCE,), daemon=True)
    stopper.start()
    (draining,) = wait_for(lambda: events(caplog, "http_draining"), PATIENCE, "the drain")
    assert draining["in_flight"] == 1
    assert call(served.address, "GET", "/health").status == 200
    scrape = call(served.metrics_address, "GET", "/metrics")
    assert scrape.status == 200
    assert b'route="/api/v1/statistics"' in scrape.body  # the final counts, 503s included
    assert events(caplog, "listeners_closed") == []

    reloader.release.set()
    flight.join()
    assert flight.error is None
    assert flight.answer is not None and flight.answer.status == 200
    assert flight.answer.json() == RELOAD_DOCUMENT
    stopper.join(PATIENCE)
    assert not stopper.is_alive()
    (closed,) = events(caplog, "listeners_closed")
    assert closed["cancelled"] == 0
    assert reloader.triggers == ["api"]  # the refused reload never reached the reloader
    assert (
        served.metrics.value("dynamic_toolset_api_requests_total", {"route": RELOAD, "code": "503"})
        == 1
    )
    assert (
        served.metrics.value("dynamic_toolset_api_requests_total", {"route": RELOAD, "code": "200"})
        == 1
    )
    assert served.api.in_flight == 0
    with pytest.raises(ConnectionRefusedError):
        call(served.address, "GET", "/health")


def test_new_requests_are_refused_before_authentication(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("the-token\n")
    auth = CountingAuth(StaticTokens(str(tokens)))
    reloader = RecordingReloader()
    server = serve(auth, reloader)
    try:
        assert call(server.address, "GET", "/status").status == 200
        assert call(server.address, "GET", "/api/v1/statistics").status == 401
        assert auth.calls == 1
        server.probes.shutting_down()
        for path, headers in [
            ("/api/v1/statistics", bearer("the-token")),
            ("/api/v1/statistics", {}),  # no token: 503, not 401 (the auth API is not asked)
            ("/api/v1/nothing", bearer("wrong")),
            ("/status", {}),  # the status page and its assets are the API's too
            ("/status/status.js", {}),
            ("/", {}),
        ]:
            assert_shutting_down(call(server.address, "GET", path, headers=headers), path)
        assert_shutting_down(
            call(server.address, "POST", RELOAD, headers=bearer("the-token")), RELOAD
        )
        assert auth.calls == 1 and reloader.triggers == []
        assert call(server.address, "GET", "/health").status == 200
        assert call(server.metrics_address, "GET", "/metrics").status == 200
    finally:
        server.probes.stop()


def test_a_kept_alive_connection_is_closed_by_the_503(served: Served) -> None:
    conn = http.client.HTTPConnection(*served.address, timeout=PATIENCE)
    try:
        conn.request("GET", "/api/v1/statistics")
        first = conn.getresponse()
        first.read()
        assert first.status == 200 and first.getheader("Connection") != "close"
        served.probes.shutting_down()
        conn.request("GET", "/api/v1/statistics")  # the same connection, a new request
        second = conn.getresponse()
        second.read()
        assert second.status == 503
        # The retry opens a new connection, which the Service may send to another replica.
        assert second.getheader("Connection") == "close"
        assert second.will_close
    finally:
        conn.close()


def test_a_request_that_overruns_the_stop_budget_is_cancelled_and_logged(
    served: Served, reloader: HeldReloader, caplog: pytest.LogCaptureFixture
) -> None:
    flight = InFlight(served.address)
    assert reloader.entered.wait(PATIENCE)
    # stop() without shutting_down() first: it begins the shutdown itself, so
    # no new request is admitted while it waits.
    stopper = threading.Thread(
        target=served.probes.stop, args=(2 * CLOSE_TIMEOUT + 0.5,), daemon=True
    )
    stopper.start()
    wait_for(lambda: events(caplog, "http_draining"), PATIENCE, "the drain")
    assert_shutting_down(call(served.address, "GET", "/api/v1/statistics"), "/api/v1/statistics")
    stopper.join(PATIENCE)
    assert not stopper.is_alive()
    (overran,) = events(caplog, "http_drain_timeout")
    assert overran["unfinished"] == 1
    (closed,) = events(caplog, "listeners_closed")
    assert closed["cancelled"] == 1
    flight.join()
    # The cancelled request got no answer: its connection closed under it.
    assert flight.answer is None
    assert isinstance(flight.error, (http.client.RemoteDisconnected, ConnectionError))
    assert served.api.in_flight == 0
