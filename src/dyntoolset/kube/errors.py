"""API errors as outcomes, and the one backoff every loop uses.

Every call into the Kubernetes API that fails is turned into an
:class:`ApiFailure` by :func:`classify`: either *temporary* (5xx, 429,
connection errors, timeouts: try again after :attr:`ApiFailure.retry_after`
or the backoff's delay) or *permanent* (400, 401, 403, 404, 422, ...: the
configuration or RBAC must change first). A 403 carries the RBAC rule to
add, so the log line tells the operator exactly what to grant.

:class:`Backoff` is the single retry policy (the client's own urllib3
retries are switched off by :mod:`dyntoolset.kube.client`): 0.8 s doubling
to 30 s, jittered, reset once the loop has been healthy for a while.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import attrs

from dyntoolset.health.checker import backoff_delay

__all__ = ["ApiFailure", "Backoff", "RbacRule", "classify"]

#: Statuses worth retrying with a delay (besides connection errors and timeouts).
_TEMPORARY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: The longest ``Retry-After`` honoured: a server asking for an hour is not obeyed blindly.
MAX_RETRY_AFTER = 300.0


@attrs.frozen
class RbacRule:
    """One RBAC rule: what a Role (or ClusterRole) must grant for a failed call."""

    verb: str
    resource: str
    namespace: str | None = None
    name: str | None = None
    api_group: str = ""

    def __str__(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else " cluster-wide"
        named = f" (resourceNames: [{self.name}])" if self.name else ""
        group = self.api_group or '""'
        return (
            f"apiGroups: [{group}], resources: [{self.resource}], verbs: [{self.verb}]"
            f"{named}{where}"
        )


class ApiFailure(Exception):
    """A failed API call, classified.

    ``status`` is the HTTP status (0 for a connection error or timeout),
    ``reason`` the ``Status`` reason (``Conflict``, ``AlreadyExists``,
    ``Forbidden``, ``Expired``, ...) or the kind of network failure,
    ``temporary`` whether retrying later can succeed, ``retry_after`` the
    server's ``Retry-After`` in seconds (``None`` if it sent none),
    ``rbac_hint`` the rule to add for a 403, and ``error_type`` a short
    label for metrics (``forbidden``, ``conflict``, ``server_error``, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        reason: str,
        temporary: bool,
        error_type: str,
        retry_after: float | None = None,
        rbac_hint: RbacRule | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.temporary = temporary
        self.error_type = error_type
        self.retry_after = retry_after
        self.rbac_hint = rbac_hint

    @property
    def conflict(self) -> bool:
        """A 409: the object changed (``Conflict``) or already exists (``AlreadyExists``)."""
        return self.status == 409

    @property
    def gone(self) -> bool:
        """A 410: the resourceVersion or continue token is too old; list again."""
        return self.status == 410

    @property
    def not_found(self) -> bool:
        """A 404."""
        return self.status == 404

    def __str__(self) -> str:
        text = self.message
        if self.rbac_hint is not None:
            text += f"; grant the controller's ServiceAccount: {self.rbac_hint}"
        return text


_ERROR_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    408: "timeout",
    409: "conflict",
    410: "gone",
    413: "too_large",
    422: "invalid",
    429: "too_many_requests",
}


def _status_document(body: Any) -> dict[str, Any]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return {}
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _retry_after(headers: Any, document: dict[str, Any]) -> float | None:
    value: Any = None
    if headers is not None:
        value = headers.get("Retry-After")
    if value is None:
        details = document.get("details")
        if isinstance(details, dict):
            value = details.get("retryAfterSeconds")
    try:
        seconds = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: rare from the API server; the backoff applies
    if seconds is None or seconds != seconds or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def from_status(
    status: int,
    body: Any,
    headers: Any = None,
    *,
    verb: str,
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    api_group: str = "",
) -> ApiFailure:
    """An :class:`ApiFailure` for an HTTP error answer (or an in-stream watch ``ERROR``)."""
    document = _status_document(body) if not isinstance(body, dict) else body
    reason = str(document.get("reason") or "") or f"HTTP {status}"
    detail = str(document.get("message") or "")[:500] or "no message"
    where = f"{resource}/{name}" if name else resource
    if namespace:
        where += f" in namespace {namespace}"
    message = f"{verb} {where}: {status} {reason}: {detail}"
    temporary = status in _TEMPORARY_STATUSES or status >= 500
    error_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else f"http_{status}")
    rbac = None
    if status == 403:
        rbac = RbacRule(verb, resource, namespace, name, api_group)
    elif status == 401:
        message += " (the API server rejected the credentials: check the kubeconfig or token)"
    return ApiFailure(
        message,
        status=status,
        reason=reason,
        temporary=temporary,
        error_type=error_type,
        retry_after=_retry_after(headers, document) if temporary else None,
        rbac_hint=rbac,
    )


def classify(
    exc: BaseException,
    *,
    verb: str,
    resource: str,
    namespace: str | None = None,
    name: str | None = None,
    api_group: str = "",
) -> ApiFailure:
    """Turn whatever a client call raised into an :class:`ApiFailure`.

    ``verb``/``resource``/``namespace``/``name`` describe the call, for the
    message and the RBAC hint. Anything that is not an HTTP answer (refused
    or dropped connections, timeouts, TLS failures, a broken chunk) is
    temporary with ``status`` 0.
    """
    if isinstance(exc, ApiFailure):
        return exc
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status > 0 and hasattr(exc, "body"):
        return from_status(
            status,
            getattr(exc, "body", None),
            getattr(exc, "headers", None),
            verb=verb,
            resource=resource,
            namespace=namespace,
            name=name,
            api_group=api_group,
        )
    kind = _network_kind(exc)
    where = f"{resource}/{name}" if name else resource
    return ApiFailure(
        f"{verb} {where}: {kind}: {type(exc).__name__}: {exc}"[:600],
        status=0,
        reason=kind,
        temporary=True,
        error_type=kind,
    )


def _network_kind(exc: BaseException) -> str:
    from urllib3 import exceptions as u3

    if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2.x: test it first.
    if isinstance(exc, u3.NewConnectionError | ConnectionError | u3.ProtocolError):
        return "connection"
    if isinstance(exc, u3.TimeoutError | TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, u3.SSLError | ssl.SSLError):
        return "tls"
    return "connection"


class Backoff:
    """Jittered, capped exponential delays: ``base`` doubling up to ``cap``.

    Call :meth:`delay` after each failure (it counts the failure) and
    :meth:`healthy` whenever the guarded operation works; once it has been
    healthy for ``reset_after`` seconds the next failure starts again from
    ``base``. :meth:`reset` starts over at once (a complete success). A
    server's ``Retry-After`` is a floor, never shortened by jitter.
    """

    def __init__(
        self,
        base: float = 0.8,
        cap: float = 30.0,
        reset_after: float = 60.0,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base
        self.cap = cap
        self.reset_after = reset_after
        self._rng = rng or random.Random()
        self._clock = clock
        self.failures = 0
        self._healthy_since: float | None = None

    def delay(self, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt after one more failure."""
        now = self._clock()
        if self._healthy_since is not None and now - self._healthy_since >= self.reset_after:
            self.failures = 0
        self._healthy_since = None
        seconds = backoff_delay(self.failures, self.base, self.cap, self._rng)
        self.failures += 1
        if retry_after is not None:
            seconds = max(seconds, min(retry_after, MAX_RETRY_AFTER))
        return seconds

    def healthy(self) -> None:
        """The operation works (for now); the streak resets after ``reset_after`` of this."""
        if self._healthy_since is None:
            self._healthy_since = self._clock()

    def reset(self) -> None:
        """Forget every failure."""
        self.failures = 0
        self._healthy_since = None
