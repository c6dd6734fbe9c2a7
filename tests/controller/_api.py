"""Real HTTP against the probe listener with the API mounted: a server, a client, a reloader."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs
from aiohttp import web

from dyntoolset.controller.api import Api
from dyntoolset.controller.auth import Authenticator
from dyntoolset.controller.probes import ProbeServer
from dyntoolset.errors import ConfigError
from dyntoolset.metrics import Metrics

LOOPBACK = ("127.0.0.1", 0)

RELOAD_DOCUMENT = {
    "status": "success",
    "detectors_enabled": 3,
    "detectors_disabled": 2,
    "reload_time": "2026-12-01T14:00:00Z",
}


@attrs.frozen
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


def call(
    address: tuple[str, int],
    method: str,
    path: str,
    *,
    headers: Mapping[str, str | bytes] | None = None,
    body: bytes | None = None,
) -> Answer:
    """One request on a new connection; header values may be raw bytes (non-ASCII tokens)."""
    conn = http.client.HTTPConnection(*address, timeout=30)
    try:
        conn.putrequest(method, path)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


def bearer(token: str | bytes) -> dict[str, str | bytes]:
    if isinstance(token, bytes):
        return {"Authorization": b"Bearer " + token}
    return {"Authorization": f"Bearer {token}"}


class Report:
    def as_document(self) -> dict[str, Any]:
        return dict(RELOAD_DOCUMENT)


class RecordingReloader:
    """A :class:`~dyntoolset.controller.api.ConfigReloader` double: records calls and threads."""

    def __init__(self) -> None:
        self.triggers: list[str] = []
        self.threads: list[str] = []
        self.error: Exception | None = None

    def reload(self, trigger: str) -> Report:
        self.triggers.append(trigger)
        self.threads.append(threading.current_thread().name)
        if self.error is not None:
            raise self.error
        return Report()


def config_error(*problems: tuple[str, str]) -> ConfigError:
    from dyntoolset.errors import Problem

    return ConfigError([Problem(path, message) for path, message in problems], "/etc/config.yaml")


async def statistics(request: web.Request) -> web.Response:
    return web.json_response({"discoveries_total": 1})


async def status_page(request: web.Request) -> web.Response:
    return web.Response(text="<html>status</html>", content_type="text/html")


READ_ROUTES = [web.get("/api/v1/statistics", statistics)]
OPEN_ROUTES = [web.get("/status", status_page)]


@contextmanager
def serving(
    authenticator: Authenticator,
    *,
    metrics: Metrics | None = None,
    reloader: RecordingReloader | None = None,
    **options: Any,
) -> Iterator[tuple[tuple[str, int], Metrics]]:
    """A ProbeServer with the API on a free loopback port; yields its address and metrics."""
    metrics = metrics or Metrics()
    api = Api(
        authenticator,
        metrics,
        reloader=reloader,
        read_routes=READ_ROUTES,
        open_routes=OPEN_ROUTES,
        **options,
    )
    server = ProbeServer(metrics, listen=LOOPBACK, metrics_listen=None, api=api)
    server.start()
    try:
        yield server.addresses["probes"], metrics
    finally:
        server.stop()
