"""The probe and metrics HTTP servers: ``/health``, ``/ready`` and ``/metrics``.

:class:`ProbeServer` runs aiohttp applications in a background thread with
an event loop of its own, so the controller's threads (watch, reconciler,
elector) never share a loop with HTTP. Two listeners by default: the probes
on ``--listen`` (``0.0.0.0:8080``) and ``/metrics`` on ``--metrics-listen``
(``0.0.0.0:9090``); given the same address, one listener serves all three.

* ``/health`` (liveness): 200 while every liveness check passes (the
  controller's loops are running); 503 otherwise, so the kubelet restarts a
  process whose loop died.
* ``/ready`` (readiness): 200 when every readiness check passes (cache
  synced, configuration valid). Never tied to leadership: a follower is
  ready, or a rolling update would deadlock. 503 from
  :meth:`ProbeServer.shutting_down` on.
* ``/metrics``: :class:`~dyntoolset.metrics.Metrics`' registry in the
  Prometheus text format.

Both probes answer JSON saying why; errors (unknown path, wrong method, a
check that raised) are RFC 7807 ``application/problem+json``
(:mod:`~dyntoolset.controller.problems`). There is no access log for the
probes: the kubelet probes every few seconds.

Given an :class:`~dyntoolset.controller.api.Api`, the ``--listen`` listener
also serves it (``/api/v1/*``, authenticated; its open routes), with its
body cap and middlewares.

Shutdown in two steps. :meth:`ProbeServer.shutting_down`: ``/ready`` and
every new API request answer 503, ``/health`` and ``/metrics`` answer as
before (the kubelet must not restart a stopping Pod; the last scrape sees
the final counts). :meth:`ProbeServer.stop`: the API requests in flight
finish (a reload, a statistics read) while the listeners stay open, then
the listeners close.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs
from aiohttp import web
from prometheus_client.exposition import choose_encoder

from dyntoolset.controller.problems import problems
from dyntoolset.metrics import Metrics

if TYPE_CHECKING:
    from dyntoolset.controller.api import Api

__all__ = ["Check", "ProbeServer", "is_loopback", "parse_listen"]

log = logging.getLogger("dyntoolset.probes")

#: Server limits: idle keep-alive connections are closed after this many seconds.
KEEPALIVE_TIMEOUT = 15.0
#: aiohttp's ``shutdown_timeout``, set explicitly (its default is 60 s). In aiohttp 3.14
#: ``AppRunner.cleanup()`` closes the listening sockets, closes idle keep-alive
#: connections, then for each busy connection waits up to this long for its handler,
#: cancels it and waits up to this long again. :meth:`ProbeServer.stop` has already let
#: the API requests finish, so this only bounds a probe or scrape caught mid-answer
#: and the cancellation of an API request that overran the stop's budget.
CLOSE_TIMEOUT = 1.0

_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})$")


@attrs.frozen
class Check:
    """One named condition of a probe: ``ok``, and in words why not (or what it saw)."""

    name: str
    ok: bool
    detail: str = ""


#: A probe's checks, evaluated on every request (cheap: they read state, never the API).
Checks = Callable[[], Sequence[Check]]


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (all interfaces) as ``(host, port)``.

    Raises ``ValueError`` naming the value and the expected form.
    """
    match = _HOST_PORT.match(value.strip())
    port = int(match["port"]) if match else -1
    if not match or not 0 <= port <= 65535:
        raise ValueError(f"{value!r}: expected HOST:PORT, [IPV6]:PORT or :PORT (port 0-65535)")
    host = match["v6"] or match["host"] or "0.0.0.0"
    return host, port


def is_loopback(host: str) -> bool:
    """Whether a listen host only accepts local connections (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # another name: it may resolve anywhere


def _no_checks() -> Sequence[Check]:
    return ()


class ProbeServer:
    """The HTTP listeners of the probes and metrics, in a thread of their own.

    ``liveness`` and ``readiness`` return the current checks; they are called
    on the server's thread for every request and must only read state.
    ``metrics_listen=None`` serves no ``/metrics``. Port 0 binds a free port;
    :attr:`addresses` says which after :meth:`start`. ``api`` is served on
    the ``listen`` listener.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        listen: tuple[str, int] = ("0.0.0.0", 8080),
        metrics_listen: tuple[str, int] | None = ("0.0.0.0", 9090),
        liveness: Checks = _no_checks,
        readiness: Checks = _no_checks,
        api: Api | None = None,
    ) -> None:
        self._metrics = metrics
        self._api = api
        self._listen = listen
        self._metrics_listen = metrics_listen
        self._liveness = liveness
        self._readiness = readiness
        self._shutting_down = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: list[web.AppRunner] = []
        #: ``{"probes": (host, port), "metrics": (host, port)}`` once started.
        self.addresses: dict[str, tuple[str, int]] = {}

    # -- lifecycle ----------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Bind the listeners and serve in a background thread.

        Raises ``OSError`` (address in use, permission denied) from the
        caller's thread, naming the address, so a misconfigured port stops
        the start instead of a silent thread death.
        """
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="probes", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._bind(), loop).result(timeout)
        except BaseException:
            self.stop()
            raise

    def shutting_down(self) -> None:
        """From now on ``/ready`` answers 503 (the Pod leaves the Service endpoints) and
        every new API request 503; requests in flight, ``/health`` and ``/metrics`` go on."""
        self._shutting_down.set()
        if self._api is not None:
            self._api.shutting_down()

    def stop(self, timeout: float = 5.0) -> None:
        """Let the API requests in flight finish, close the listeners, end the thread.

        Returns within about ``timeout`` seconds: the requests get all of it
        but ``2 * CLOSE_TIMEOUT``, which closing the listeners may take; one
        still running then is cancelled (its client sees the connection
        close) and logged. Begins the shutdown (:meth:`shutting_down`) if
        nobody has. Idempotent.
        """
        self.shutting_down()  # no new request may prolong the wait below
        loop, self._loop = self._loop, None
        if loop is None:
            return
        runners, self._runners = self._runners, []
        if loop.is_running():
            drain = max(0.0, timeout - 2 * CLOSE_TIMEOUT)
            future = asyncio.run_coroutine_threadsafe(self._close(runners, drain), loop)
            try:
                # A margin over the close's own bound: the loop thread may be slow to start it.
                future.result(drain + 2 * CLOSE_TIMEOUT + 1.0)
            except (TimeoutError, OSError, RuntimeError) as exc:  # stopping anyway
                log.debug("probe server cleanup: %s", exc)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        loop.close()

    # -- applications ------------------------------------------------------------------

    async def _bind(self) -> None:
        groups: list[tuple[tuple[str, int], list[str]]] = [(self._listen, ["probes"])]
        if self._metrics_listen == self._listen and self._listen[1] != 0:
            groups[0][1].append("metrics")  # one address, one listener (port 0: two free ports)
        elif self._metrics_listen is not None:
            groups.append((self._metrics_listen, ["metrics"]))
        for address, roles in groups:
            api = self._api if "probes" in roles else None
            if api is not None:
                app = web.Application(middlewares=api.middlewares(), client_max_size=api.max_body)
                api.add_routes(app)
            else:
                # No body is read on these routes: aiohttp's default cap (1 MiB) is moot.
                app = web.Application(middlewares=[problems])
            if "probes" in roles:
                app.router.add_get("/health", self._health, allow_head=True)
                app.router.add_get("/ready", self._ready, allow_head=True)
            if "metrics" in roles:
                app.router.add_get("/metrics", self._serve_metrics, allow_head=True)
            runner = web.AppRunner(
                app,
                access_log=None,
                handle_signals=False,
                keepalive_timeout=KEEPALIVE_TIMEOUT,
                shutdown_timeout=CLOSE_TIMEOUT,
            )
            await runner.setup()
            self._runners.append(runner)
            site = web.TCPSite(runner, address[0], address[1], reuse_address=True)
            try:
                await site.start()
            except OSError as exc:
                raise OSError(
                    exc.errno, f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}"
                ) from exc
            bound = runner.addresses[0][:2] if runner.addresses else address
            for role in roles:
                self.addresses[role] = (str(bound[0]), int(bound[1]))
            log.info(
                "serving %s on %s:%s",
                " and ".join(roles),
                bound[0],
                bound[1],
                extra={
                    "dyntoolset": {
                        "event": "listening",
                        "roles": roles,
                        "address": f"{bound[0]}:{bound[1]}",
                    }
                },
            )

    async def _close(self, runners: Sequence[web.AppRunner], drain: float) -> None:
        """The API requests in flight finish (at most ``drain`` seconds), then the listeners close."""
        unfinished = 0
        if self._api is not None and self._api.in_flight:
            log.info(
                "waiting for %d HTTP API requests in flight (at most %.1f s)",
                self._api.in_flight,
                drain,
                extra={"dyntoolset": {"event": "http_draining", "in_flight": self._api.in_flight}},
            )
            unfinished = await self._api.drain(drain)
            if unfinished:
                log.warning(
                    "%d HTTP API requests still running after %.1f s are cancelled",
                    unfinished,
                    drain,
                    extra={"dyntoolset": {"event": "http_drain_timeout", "unfinished": unfinished}},
                )
        for runner in runners:
            await runner.cleanup()
        if runners:
            log.info(
                "HTTP listeners closed",
                extra={"dyntoolset": {"event": "listeners_closed", "cancelled": unfinished}},
            )

    async def _health(self, request: web.Request) -> web.Response:
        checks = list(self._liveness())
        ok = all(c.ok for c in checks)
        return _status_response(ok, "ok" if ok else "unhealthy", checks)

    async def _ready(self, request: web.Request) -> web.Response:
        if self._shutting_down.is_set():
            return _status_response(
                False, "shutting down", [Check("shutdown", False, "the process is stopping")]
            )
        checks = list(self._readiness())
        ok = all(c.ok for c in checks)
        return _status_response(ok, "ready" if ok else "not ready", checks)

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        # The format the scraper asks for (Accept), as prometheus_client's own server does.
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(
            body=encoder(self._metrics.registry), headers={"Content-Type": content_type}
        )


def _status_response(ok: bool, status: str, checks: Sequence[Check]) -> web.Response:
    document = {
        "status": status,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
    return web.json_response(document, status=200 if ok else 503)
