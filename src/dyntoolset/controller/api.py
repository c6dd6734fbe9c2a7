"""The HTTP API on the ``--listen`` listener: ``/api/v1/*``, authenticated.

:class:`Api` is mounted by :class:`~dyntoolset.controller.probes.ProbeServer`
next to ``/health`` and ``/ready``. It brings:

* the middlewares: an access log line and ``api_requests_total{route,code}``
  for every ``/api/v1`` request (method, route pattern, status, duration,
  user, request id; never a header, so never a token), the problem documents
  of :mod:`~dyntoolset.controller.problems`, and authentication of every
  path under ``/api/v1`` (an unknown one included: no route is revealed to
  an anonymous caller) with a per-request time limit;
* the routes: ``POST /api/v1/config/reload`` (action ``create`` on its
  path), the ``read_routes`` of others (under ``/api/v1``, action ``get`` on
  the request path) and ``open_routes`` (no authentication, e.g. ``/status``).

A request body is capped (413), and must be ``application/json`` when there
is one (415).

Shutdown: from :meth:`Api.shutting_down` on, every new request to the API
and its open routes is 503 with ``Retry-After`` (before authentication: a
stopping controller asks the auth API nothing), while the requests already
admitted run on; :meth:`Api.drain` waits for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from dyntoolset.controller.auth import Action, Authenticator, AuthFailure
from dyntoolset.controller.problems import ProblemError, problem, problems, request_id
from dyntoolset.errors import ConfigError
from dyntoolset.metrics import Metrics

__all__ = [
    "API_PREFIX",
    "MAX_BODY_BYTES",
    "RELOAD_PATH",
    "SHUTDOWN_RETRY_AFTER",
    "Api",
    "ConfigReloader",
    "ReloadResult",
    "json_body",
]

log = logging.getLogger("dyntoolset.api")

API_PREFIX = "/api/v1"
RELOAD_PATH = "/api/v1/config/reload"
#: The largest request body accepted (413 beyond).
MAX_BODY_BYTES = 64 * 1024
#: How long one API request may take, authentication included (503 beyond).
HANDLER_TIMEOUT = 60.0
#: ``Retry-After`` (seconds) of the 503 a stopping controller answers: by then its
#: ``/ready`` is 503 and the Pod is leaving the Service's endpoints, so a retry a
#: few seconds later reaches another replica (or the restarted one).
SHUTDOWN_RETRY_AFTER = 5

_USER_KEY = web.RequestKey("api_user", str)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ReloadResult(Protocol):
    """What a reload returns: a report that renders the requirements' document."""

    def as_document(self) -> dict[str, Any]:
        """``{"status", "detectors_enabled", "detectors_disabled", "reload_time"}``."""
        ...


class ConfigReloader(Protocol):
    """Reloads the configuration (``dyntoolset.controller.reload.Reloader``).

    ``reload`` is thread-safe and serialised, and raises
    :class:`~dyntoolset.errors.ConfigError` when the new configuration is
    invalid (the old one stays in force).
    """

    def reload(self, trigger: str) -> ReloadResult:
        """Read, validate and apply the configuration; ``trigger`` says who asked."""
        ...


def is_api_path(path: str) -> bool:
    """Whether ``path`` is under ``/api/v1`` (authenticated)."""
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def action_of(request: web.Request) -> Action:
    """The action a request asks for: the reload, or a read of its path."""
    if request.method == "POST" and request.path == RELOAD_PATH:
        return Action("create", RELOAD_PATH)
    return Action("get", request.path)


def route_label(request: web.Request) -> str:
    """The matched route's pattern (a 405's path's route too), else ``unmatched``: never a raw path."""
    resource = request.match_info.route.resource
    if resource is None:  # 404 and 405 carry no route; a 405 is on a registered path
        resource = next(
            (r for r in request.app.router.resources() if r.raw_match(request.path)), None
        )
    return resource.canonical if resource is not None else "unmatched"


async def json_body(request: web.Request) -> Any:
    """The request's JSON body, ``None`` when there is none.

    Raises :class:`ProblemError` 415 for a body that is not
    ``application/json``, 400 for one that is not JSON; reading more than
    the app's ``client_max_size`` answers 413.
    """
    if not request.body_exists:
        return None
    if request.content_type != "application/json":
        raise ProblemError(
            415,
            "Unsupported Media Type",
            f"a request body must be application/json, not {request.content_type}",
            headers={"Accept-Post": "application/json"},
        )
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(400, "Bad Request", f"the body is not valid JSON: {exc}") from None


class Api:
    """The ``/api/v1`` application parts; see the module docstring.

    ``reloader`` ``None`` answers the reload with 503 ("reload is not
    available"). ``read_routes`` must all be under ``/api/v1`` (a route
    elsewhere would be served without authentication: refused with
    ``ValueError``). The middlewares and :meth:`drain` run on the server's
    event loop; :meth:`shutting_down` may be called from any thread.
    """

    def __init__(
        self,
        authenticator: Authenticator,
        metrics: Metrics,
        *,
        reloader: ConfigReloader | None = None,
        read_routes: Sequence[web.RouteDef] = (),
        open_routes: Sequence[web.RouteDef] = (),
        max_body: int = MAX_BODY_BYTES,
        handler_timeout: float = HANDLER_TIMEOUT,
    ) -> None:
        for route in read_routes:
            if not is_api_path(route.path):
                raise ValueError(
                    f"read route {route.method} {route.path} is not under {API_PREFIX}"
                )
        self._authenticator = authenticator
        self._metrics = metrics
        self._reloader = reloader
        self._read_routes = tuple(read_routes)
        self._open_routes = tuple(open_routes)
        self.max_body = max_body
        self._timeout = handler_timeout
        self._open_paths = frozenset(route.path for route in self._open_routes)
        self._stopping = threading.Event()
        # Admitted requests not yet answered; only the event loop touches these two.
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def middlewares(self) -> list[Any]:
        """Outermost first: access log and metrics, problem documents, the shutdown
        gate, authentication."""
        return [self._access_log, problems, self._admit, self._authenticate]

    def serves(self, path: str) -> bool:
        """Whether ``path`` is the API's: under ``/api/v1``, or one of its open routes."""
        return is_api_path(path) or path in self._open_paths

    def shutting_down(self) -> None:
        """From now on every new request to :meth:`serves` paths answers 503 (thread-safe).

        Requests already admitted are not touched: they finish and get their answer.
        """
        self._stopping.set()

    @property
    def in_flight(self) -> int:
        """How many admitted requests have not been answered yet."""
        return self._in_flight

    async def drain(self, timeout: float) -> int:
        """Wait until no admitted request is in flight, at most ``timeout`` seconds.

        Returns how many are still in flight (0: drained). Call it after
        :meth:`shutting_down`, or new requests may keep it waiting.
        """
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await self._idle.wait()
        except TimeoutError:
            pass
        return self._in_flight

    def add_routes(self, app: web.Application) -> None:
        """Register the API's routes on ``app``."""
        app.router.add_routes(self._open_routes)
        app.router.add_routes(self._read_routes)
        app.router.add_post(RELOAD_PATH, self._reload)

    # -- middlewares -----------------------------------------------------------------

    @web.middleware
    async def _access_log(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not is_api_path(request.path):
            return await handler(request)
        start = time.monotonic()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # redirects (< 400) pass through problems()
            status = exc.status
            raise
        finally:
            self._log(request, status, time.monotonic() - start)

    def _log(self, request: web.Request, status: int, seconds: float) -> None:
        route = route_label(request)
        user = request.get(_USER_KEY, "-")
        rid = request_id(request)
        self._metrics.api_requests.labels(route=route, code=str(status)).inc()
        log.info(
            "%s %s %d %.1f ms user=%s request_id=%s",
            request.method,
            route,
            status,
            seconds * 1000,
            user,
            rid,
            extra={
                "dyntoolset": {
                    "event": "api_request",
                    "method": request.method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "user": user,
                    "request_id": rid,
                }
            },
        )

    @web.middleware
    async def _admit(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Refuse new requests once shutting down; count the admitted ones until answered."""
        if not self.serves(request.path):
            return await handler(request)
        if self._stopping.is_set():
            response = problem(
                request,
                503,
                "Service Unavailable",
                "the controller is shutting down; retry the request",
                headers={"Retry-After": str(SHUTDOWN_RETRY_AFTER)},
            )
            # Close the connection: the client's retry opens a new one, which the
            # Service can route to another replica (a kept-alive one stays here).
            response.force_close()
            return response
        self._in_flight += 1
        self._idle.clear()
        try:
            return await handler(request)
        finally:  # also when cancelled (a stop that ran out of time): no longer in flight
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if not is_api_path(request.path):
            return await handler(request)
        try:
            async with asyncio.timeout(self._timeout):
                loop = asyncio.get_running_loop()
                try:
                    request[_USER_KEY] = await loop.run_in_executor(
                        None,
                        self._authenticator.authenticate,
                        request.headers.get("Authorization"),
                        action_of(request),
                    )
                except AuthFailure as failure:
                    if failure.user:
                        request[_USER_KEY] = failure.user
                    raise self._refusal(failure) from None
                return await handler(request)
        except TimeoutError:
            raise ProblemError(
                503,
                "Service Unavailable",
                f"the request took longer than {self._timeout:.0f} s; try again later",
            ) from None

    def _refusal(self, failure: AuthFailure) -> ProblemError:
        self._metrics.api_auth_failures.labels(reason=failure.reason).inc()
        challenge = failure.www_authenticate()
        titles = {401: "Unauthorized", 403: "Forbidden", 503: "Service Unavailable"}
        return ProblemError(
            failure.status,
            titles.get(failure.status, "Error"),
            failure.detail,
            headers={"WWW-Authenticate": challenge} if challenge else None,
        )

    # -- handlers ----------------------------------------------------------------------

    async def _reload(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        if body not in (None, {}):
            raise ProblemError(
                400, "Bad Request", "the reload takes no parameters: send no body or {}"
            )
        if self._reloader is None:
            raise ProblemError(
                503, "Service Unavailable", "reload is not available in this controller"
            )
        loop = asyncio.get_running_loop()
        try:
            # Off the loop: a reload reads files or the API and may wait for another one.
            report = await loop.run_in_executor(None, self._reloader.reload, "api")
        except ConfigError as exc:
            where = f" from {exc.source}" if exc.source else ""
            raise ProblemError(
                422,
                "Unprocessable Content",
                f"the new configuration{where} is invalid; the old one stays in force",
                errors=[str(p) for p in exc.problems],
            ) from None
        return web.json_response(report.as_document())
