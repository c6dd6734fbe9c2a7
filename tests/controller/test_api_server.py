"""The API server through real HTTP: problem documents, limits, the reload handler, the access log."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from dyntoolset.controller.api import MAX_BODY_BYTES, Api
from dyntoolset.controller.auth import NoAuth, StaticTokens
from dyntoolset.controller.logs import configure_logging
from dyntoolset.metrics import Metrics
from tests.controller._api import (
    RELOAD_DOCUMENT,
    RecordingReloader,
    bearer,
    call,
    config_error,
    serving,
)

PROBLEM = "application/problem+json; charset=utf-8"
RELOAD = "/api/v1/config/reload"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def reloader() -> RecordingReloader:
    return RecordingReloader()


@pytest.fixture
def server(reloader: RecordingReloader) -> Iterator[tuple[tuple[str, int], Metrics]]:
    with serving(NoAuth(), reloader=reloader) as served:
        yield served


def assert_problem(answer, status: int, path: str) -> dict:
    assert answer.status == status
    assert answer.content_type == PROBLEM
    document = answer.json()
    assert set(document) >= {"type", "title", "status", "detail", "instance", "request_id"}
    assert document["status"] == status
    assert document["instance"] == path
    assert document["request_id"] == answer.headers["X-Request-Id"]
    return document


def test_reload_answers_the_reloaders_document(server, reloader) -> None:
    address, metrics = server
    answer = call(address, "POST", RELOAD)  # no body: no content type needed
    assert answer.status == 200 and answer.json() == RELOAD_DOCUMENT
    assert call(address, "POST", RELOAD, headers=JSON, body=b"{}").json() == RELOAD_DOCUMENT
    assert call(address, "POST", RELOAD, headers=JSON, body=b"").status == 200
    assert reloader.triggers == ["api", "api", "api"]
    # Off the event loop: never on the server's own thread.
    assert "probes" not in reloader.threads
    assert (
        metrics.value("dynamic_toolset_api_requests_total", {"route": RELOAD, "code": "200"}) == 3
    )


def test_an_invalid_configuration_is_422_with_every_error(server, reloader) -> None:
    address, _ = server
    reloader.error = config_error(
        ("$.detectors.loki.priority", "expected int, got 'high'"),
        ("$.resync_interval", "must be a positive duration, got '0s'"),
    )
    document = assert_problem(call(address, "POST", RELOAD), 422, RELOAD)
    assert document["errors"] == [
        "$.detectors.loki.priority: expected int, got 'high'",
        "$.resync_interval: must be a positive duration, got '0s'",
    ]
    assert "old one stays in force" in document["detail"]


def test_a_failing_reloader_is_500_without_internals(server, reloader, caplog) -> None:
    address, _ = server
    reloader.error = RuntimeError("secret internals")
    with caplog.at_level(logging.ERROR, logger="dyntoolset.api"):
        answer = call(address, "POST", RELOAD, headers={"X-Request-Id": "req-500"})
    document = assert_problem(answer, 500, RELOAD)
    assert b"secret internals" not in answer.body and b"Traceback" not in answer.body
    assert "req-500" in document["detail"]
    assert any("req-500" in r.getMessage() for r in caplog.records)


def test_no_reloader_is_503(reloader) -> None:
    with serving(NoAuth(), reloader=None) as (address, _):
        document = assert_problem(call(address, "POST", RELOAD), 503, RELOAD)
    assert "reload is not available" in document["detail"]


def test_a_body_that_is_not_json_is_415(server, reloader) -> None:
    address, _ = server
    answer = call(address, "POST", RELOAD, headers={"Content-Type": "text/plain"}, body=b"go")
    document = assert_problem(answer, 415, RELOAD)
    assert "application/json" in document["detail"]
    bad = call(address, "POST", RELOAD, headers=JSON, body=b"{nope")
    assert "not valid JSON" in assert_problem(bad, 400, RELOAD)["detail"]
    params = call(address, "POST", RELOAD, headers=JSON, body=b'{"force": true}')
    assert "takes no parameters" in assert_problem(params, 400, RELOAD)["detail"]
    assert reloader.triggers == []


def test_an_oversized_body_is_413(server, reloader) -> None:
    address, _ = server
    body = b'{"x": "' + b"a" * MAX_BODY_BYTES + b'"}'
    answer = call(address, "POST", RELOAD, headers=JSON, body=body)
    assert str(MAX_BODY_BYTES) in assert_problem(answer, 413, RELOAD)["detail"]
    assert reloader.triggers == []


def test_unknown_paths_and_methods(server) -> None:
    address, metrics = server
    assert_problem(call(address, "GET", "/api/v1/nothing"), 404, "/api/v1/nothing")
    assert_problem(call(address, "GET", "/elsewhere"), 404, "/elsewhere")
    answer = call(address, "GET", RELOAD)
    document = assert_problem(answer, 405, RELOAD)
    assert answer.headers["Allow"] == "POST" and document["allowed"] == ["POST"]
    assert call(address, "DELETE", "/api/v1/statistics").headers["Allow"] == "GET, HEAD"
    # The route label is the pattern; an unknown path is one label, never the raw path.
    assert (
        metrics.value("dynamic_toolset_api_requests_total", {"route": "unmatched", "code": "404"})
        == 1
    )
    assert (
        metrics.value(
            "dynamic_toolset_api_requests_total", {"route": "/api/v1/statistics", "code": "405"}
        )
        == 1
    )


def test_read_and_open_routes_are_served(server) -> None:
    address, _ = server
    assert call(address, "GET", "/api/v1/statistics").json() == {"discoveries_total": 1}
    assert call(address, "GET", "/status").body == b"<html>status</html>"
    assert call(address, "GET", "/health").status == 200


def test_read_routes_must_be_under_the_api_prefix() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    with pytest.raises(ValueError, match="/stats is not under /api/v1"):
        Api(NoAuth(), Metrics(), read_routes=[web.get("/stats", handler)])


@pytest.mark.parametrize(
    ("given", "echoed"),
    [
        ("abc-123", True),
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("has space", False),
        ("x" * 129, False),
        ("", False),
    ],
)
def test_request_ids_are_echoed_when_sane(server, given: str, echoed: bool) -> None:
    address, _ = server
    for path in ("/api/v1/statistics", "/api/v1/missing", "/health"):
        answer = call(address, "GET", path, headers={"X-Request-Id": given})
        rid = answer.headers["X-Request-Id"]
        if echoed:
            assert rid == given
        else:
            assert re.fullmatch(r"[0-9a-f]{32}", rid)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_access_log_never_holds_the_token(tmp_path: Path, log_format: str) -> None:
    token = "tok-Very-Secret-1234"
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{token}\n")
    stream = io.StringIO()
    restore = configure_logging(log_format, logging.DEBUG, stream=stream)
    try:
        with serving(StaticTokens(str(tokens)), reloader=RecordingReloader()) as (address, _):
            headers = {**bearer(token), "X-Request-Id": "req-log-1"}
            assert call(address, "GET", "/api/v1/statistics", headers=headers).status == 200
            assert call(address, "POST", RELOAD, headers=headers).status == 200
            wrong = {**bearer(token + "x"), "X-Request-Id": "req-log-2"}
            assert call(address, "GET", "/api/v1/statistics", headers=wrong).status == 401
    finally:
        restore()
    text = stream.getvalue()
    assert token not in text and "Bearer" not in text and "Authorization" not in text
    lines = [line for line in text.splitlines() if "req-log-" in line]
    assert len(lines) == 3
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        assert [(r["method"], r["route"], r["status"], r["user"]) for r in records] == [
            ("GET", "/api/v1/statistics", 200, "static"),
            ("POST", RELOAD, 200, "static"),
            ("GET", "/api/v1/statistics", 401, "-"),
        ]
        assert all(r["duration_ms"] >= 0 and r["event"] == "api_request" for r in records)
    else:
        assert "GET /api/v1/statistics 200" in lines[0] and "user=static" in lines[0]
        assert "request_id=req-log-1" in lines[0]


class BrokenAuth:
    def authenticate(self, authorization: str | None, action: object) -> str:
        raise RuntimeError("auth internals")


def test_an_authenticator_that_raises_is_500_never_open(reloader) -> None:
    with serving(BrokenAuth(), reloader=reloader) as (address, _):
        answer = call(address, "POST", RELOAD)
    assert_problem(answer, 500, RELOAD)
    assert b"auth internals" not in answer.body
    assert reloader.triggers == []


class BlockingReloader(RecordingReloader):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def reload(self, trigger: str):  # type: ignore[no-untyped-def]
        self.release.wait(60)
        return super().reload(trigger)


def test_a_request_over_the_time_limit_is_503() -> None:
    blocking = BlockingReloader()
    try:
        with serving(NoAuth(), reloader=blocking, handler_timeout=0.2) as (address, _):
            answer = call(address, "POST", RELOAD)
            document = assert_problem(answer, 503, RELOAD)
            assert "took longer than" in document["detail"]
            # The server still answers afterwards.
            assert call(address, "GET", "/api/v1/statistics").status == 200
    finally:
        blocking.release.set()
