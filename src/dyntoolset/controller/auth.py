"""Who may call ``/api/v1/*``: the authenticators of the ``api.auth`` modes.

Every authenticator has one method, ``authenticate(authorization, action)``:
it takes the request's ``Authorization`` header and the :class:`Action`
asked for, and returns the caller's user name or raises :class:`AuthFailure`
(401 missing/malformed/invalid, 403 forbidden, 503 unavailable). They may
block (a file read, an API call): the API calls them off the event loop.

* :class:`NoAuth` (``none``): everyone, as ``anonymous`` (loopback only,
  checked by the runner).
* :class:`StaticTokens` (``static``): the tokens of a file, re-read when it
  changes (a kubelet's ``..data`` symlink swap included), compared as bytes
  in constant time against every token. A missing, unreadable or empty file
  denies everything with 503: never fail open.
* :class:`KubernetesAuth` (``kubernetes``): TokenReview, then
  SubjectAccessReview (``nonResourceAttributes``, as kube-rbac-proxy), with
  decisions cached ``cache_ttl`` seconds by a hash of the token and action.
  A failing review is 503 and is not cached.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs

from dyntoolset.kube.reviews import AccessDecision as ReviewDecision
from dyntoolset.kube.reviews import ReviewedUser, ReviewUnavailable, TokenReview

__all__ = [
    "REALM",
    "Action",
    "AuthFailure",
    "Authenticator",
    "KubernetesAuth",
    "NoAuth",
    "StaticTokens",
    "bearer_token",
]

log = logging.getLogger("dyntoolset.api")

REALM = "dyntoolset"

#: ``Bearer <token>``: the scheme case-insensitive, one token68-ish word after it.
_BEARER = re.compile(r"^[Bb][Ee][Aa][Rr][Ee][Rr] +(?P<token>[^\s]+) *$")


@attrs.frozen
class Action:
    """What a request asks to do, as a SubjectAccessReview's ``nonResourceAttributes``."""

    verb: str
    path: str


class AuthFailure(Exception):
    """The request is refused: ``status`` 401, 403 or 503, ``reason`` for the metric.

    ``reason`` is one of ``missing``, ``malformed``, ``invalid``,
    ``forbidden``, ``unavailable``; ``detail`` is safe to show the caller
    (it never holds the token).
    """

    def __init__(self, status: int, reason: str, detail: str, user: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        #: Who was refused, when known (a 403): for the access log.
        self.user = user

    def www_authenticate(self) -> str | None:
        """The ``WWW-Authenticate`` value of a 401 (RFC 6750), else ``None``."""
        if self.status != 401:
            return None
        value = f'Bearer realm="{REALM}"'
        if self.reason == "invalid":
            value += ', error="invalid_token"'
        return value


class Authenticator(Protocol):
    """Decides one request; may block (called off the event loop)."""

    def authenticate(self, authorization: str | None, action: Action) -> str:
        """The caller's user name, or raise :class:`AuthFailure`."""
        ...


def bearer_token(authorization: str | None) -> bytes:
    """The token of ``Authorization: Bearer <token>`` as bytes (as the client sent them).

    Raises :class:`AuthFailure` 401 ``missing`` or ``malformed``.
    """
    if authorization is None or not authorization.strip():
        raise AuthFailure(401, "missing", "this endpoint needs an Authorization: Bearer token")
    match = _BEARER.match(authorization)
    if match is None:
        raise AuthFailure(401, "malformed", "the Authorization header must be 'Bearer <token>'")
    # aiohttp decodes header bytes as UTF-8 with surrogateescape: undo it to
    # compare exactly the bytes that were sent, ASCII or not.
    return match["token"].encode("utf-8", "surrogateescape")


class NoAuth:
    """``mode: none``: every request is ``anonymous`` (only accepted on loopback)."""

    def authenticate(self, authorization: str | None, action: Action) -> str:
        """Always ``anonymous``."""
        return "anonymous"


@attrs.frozen
class _FileState:
    identity: tuple[int, int, int, int] | None
    tokens: tuple[bytes, ...]
    problem: str


class StaticTokens:
    """``mode: static``: the tokens of ``path``, one per line, ``#`` starts a comment.

    The file is checked on every request (``stat``: inode, device, size,
    mtime) and re-read when any of them changed, so a rotated Secret
    (replaced in place, or by the kubelet's ``..data`` symlink swap, which
    ``stat`` follows to a new inode) is in force for the next request.
    Every token holder may read and reload.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._state = _FileState(None, (), "not read yet")

    def authenticate(self, authorization: str | None, action: Action) -> str:
        """``static`` if the bearer token is in the file; see the class docstring."""
        given = bearer_token(authorization)
        tokens = self._tokens()
        match = False
        for token in tokens:  # every token, no early exit: the time says nothing of which
            match |= hmac.compare_digest(token, given)
        if not match:
            raise AuthFailure(401, "invalid", "the bearer token is not accepted")
        return "static"

    def _tokens(self) -> tuple[bytes, ...]:
        with self._lock:
            try:
                st = os.stat(self.path)
                identity = (st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)
            except OSError as exc:
                identity, problem = None, f"cannot read it: {exc.strerror or exc}"
            else:
                problem = ""
            if identity is None or identity != self._state.identity:
                self._state = self._read(identity, problem)
            if self._state.problem:
                raise AuthFailure(
                    503,
                    "unavailable",
                    f"the API's token file {self.path} {self._state.problem}; "
                    "no request is accepted until it is fixed",
                )
            return self._state.tokens

    def _read(self, identity: tuple[int, int, int, int] | None, problem: str) -> _FileState:
        tokens: tuple[bytes, ...] = ()
        if not problem:
            try:
                with open(self.path, "rb") as stream:
                    tokens = parse_token_file(stream.read())
            except OSError as exc:
                problem = f"cannot read it: {exc.strerror or exc}"
            else:
                problem = "" if tokens else "holds no token"
        if problem and problem != self._state.problem:
            log.error(
                "token file %s %s: every API request is refused (503) until it is fixed",
                self.path,
                problem,
                extra={"dyntoolset": {"event": "token_file_unusable", "path": self.path}},
            )
        elif not problem:
            log.info(
                "token file %s read: %d token%s",
                self.path,
                len(tokens),
                "" if len(tokens) == 1 else "s",
                extra={"dyntoolset": {"event": "token_file_read", "tokens": len(tokens)}},
            )
        # An unreadable file is retried on the next request (identity None never matches).
        return _FileState(identity if not problem else None, tokens, problem)


def parse_token_file(data: bytes) -> tuple[bytes, ...]:
    """The tokens of a token file: one per line, blank lines and ``#`` comments skipped."""
    tokens = []
    for line in data.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(b"#"):
            tokens.append(stripped)
    return tuple(tokens)


class Reviews(Protocol):
    """What :class:`KubernetesAuth` needs of :class:`~dyntoolset.kube.reviews.AccessReviews`."""

    def review_token(self, token: str, audiences: Sequence[str] = ()) -> TokenReview: ...

    def review_access(self, user: ReviewedUser, verb: str, path: str) -> ReviewDecision: ...


@attrs.frozen
class _Decision:
    user: str
    failure: AuthFailure | None
    expires: float


class KubernetesAuth:
    """``mode: kubernetes``: TokenReview, then SubjectAccessReview; see the module docstring.

    ``cache_ttl`` 0 asks the API server on every request. At most
    ``max_entries`` decisions are kept (the oldest go first).
    """

    def __init__(
        self,
        reviews: Reviews,
        *,
        audiences: Sequence[str] = (),
        cache_ttl: float = 10.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reviews = reviews
        self._audiences = tuple(audiences)
        self._ttl = cache_ttl
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: collections.OrderedDict[bytes, _Decision] = collections.OrderedDict()

    def authenticate(self, authorization: str | None, action: Action) -> str:
        """The reviewed user's name; see the class docstring."""
        token = bearer_token(authorization)
        key = hashlib.sha256(
            b"\0".join([token, action.verb.encode(), action.path.encode("utf-8", "replace")])
        ).digest()
        decision = self._cached(key)
        if decision is None:
            decision = self._decide(token, action)  # raises (uncached) when unavailable
            self._remember(key, decision)
        failure = decision.failure
        if failure is not None:  # a new exception each time: one may be raised in many threads
            raise AuthFailure(failure.status, failure.reason, failure.detail, failure.user)
        return decision.user

    def _cached(self, key: bytes) -> _Decision | None:
        with self._lock:
            found = self._cache.get(key)
            if found is None:
                return None
            if found.expires <= self._clock():
                del self._cache[key]
                return None
            return found

    def _remember(self, key: bytes, decision: _Decision) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._cache[key] = decision
            self._cache.move_to_end(key)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)

    def _decide(self, token: bytes, action: Action) -> _Decision:
        expires = self._clock() + self._ttl
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            # Kubernetes tokens are ASCII: these bytes cannot be one.
            failure = AuthFailure(401, "invalid", "the bearer token is not accepted")
            return _Decision("", failure, expires)
        try:
            review = self._reviews.review_token(text, self._audiences)
            if not review.authenticated or review.user is None:
                failure = AuthFailure(401, "invalid", "the bearer token is not accepted")
                return _Decision("", failure, expires)
            if self._audiences and not set(review.audiences) & set(self._audiences):
                failure = AuthFailure(
                    401, "invalid", "the bearer token is not meant for this audience"
                )
                return _Decision("", failure, expires)
            user = review.user
            access = self._reviews.review_access(user, action.verb, action.path)
        except ReviewUnavailable as exc:
            log.error(
                "cannot decide an API request: %s",
                exc,
                extra={"dyntoolset": {"event": "auth_unavailable"}},
            )
            raise AuthFailure(
                503,
                "unavailable",
                "the Kubernetes API could not authenticate or authorize the request; "
                "try again later",
            ) from None
        if not access.allowed:
            why = f" ({access.reason})" if access.reason else ""
            failure = AuthFailure(
                403,
                "forbidden",
                f"{user.username} may not {action.verb} {action.path}{why}",
                user.username,
            )
            return _Decision(user.username, failure, expires)
        return _Decision(user.username, None, expires)
