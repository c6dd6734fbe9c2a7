"""RFC 7807 problem documents and the request id every answer of the listeners carries.

One middleware, :func:`problems`, turns every error of the probe and API
listeners into ``application/problem+json`` (``type``, ``title``,
``status``, ``detail``, ``instance`` (the path) and ``request_id``), so no
handler ever answers an HTML error page or a traceback, and gives every
response an ``X-Request-Id``: the client's own when it is sane, else a new one.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

__all__ = [
    "PROBLEM_JSON",
    "REQUEST_ID_HEADER",
    "ProblemError",
    "problem",
    "problems",
    "request_id",
]

log = logging.getLogger("dyntoolset.api")

PROBLEM_JSON = "application/problem+json"
REQUEST_ID_HEADER = "X-Request-Id"

#: An incoming request id is echoed only when it looks like one (it ends up in
#: log lines and headers: no spaces, no control characters, bounded length).
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_REQUEST_ID_KEY = web.RequestKey("request_id", str)


class ProblemError(Exception):
    """Raised by a handler (or middleware) to answer a problem document.

    ``extra`` members are added to the document (``errors`` of a 422);
    ``headers`` to the response (``WWW-Authenticate`` of a 401).
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


def request_id(request: web.Request) -> str:
    """This request's id: the client's ``X-Request-Id`` if sane, else a new one (kept per request)."""
    known: str | None = request.get(_REQUEST_ID_KEY)
    if known is not None:
        return known
    given = request.headers.get(REQUEST_ID_HEADER, "")
    chosen = given if _SANE_REQUEST_ID.match(given) else uuid.uuid4().hex
    request[_REQUEST_ID_KEY] = chosen
    return chosen


def problem(
    request: web.Request,
    status: int,
    title: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """The problem document answering ``request`` (``type`` ``about:blank``: the status says it)."""
    document = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
        "request_id": request_id(request),
        **extra,
    }
    response = web.Response(
        status=status, text=json.dumps(document), content_type=PROBLEM_JSON, charset="utf-8"
    )
    response.headers.update(headers or {})
    return response


@web.middleware
async def problems(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every error as a problem document; every response with its ``X-Request-Id``."""
    rid = request_id(request)
    try:
        response = await handler(request)
    except ProblemError as exc:
        response = problem(
            request, exc.status, exc.title, exc.detail, headers=exc.headers, **exc.extra
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _from_http_exception(request, exc)
    except Exception:
        log.exception(
            "handler failed on %s %s (request id %s)",
            request.method,
            request.path,
            rid,
            extra={"dyntoolset": {"event": "handler_failed", "request_id": rid}},
        )
        response = problem(
            request,
            500,
            "Internal Server Error",
            f"the request failed; the controller's log says why (request id {rid})",
        )
    response.headers[REQUEST_ID_HEADER] = rid
    return response


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> web.Response:
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    detail = f"{request.method} {request.path}: {exc.reason}"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = sorted(exc.allowed_methods)
        extra["allowed"] = allowed
        headers["Allow"] = ", ".join(allowed)
    elif isinstance(exc, web.HTTPRequestEntityTooLarge):
        detail = (
            f"{request.method} {request.path}: the body is larger than "
            f"{request.client_max_size} bytes"
        )
    return problem(request, exc.status, exc.reason, detail, headers=headers, **extra)
