"""Transports: how one health-check attempt reaches a service.

Two ways, one interface (:meth:`prepare` once per check, :meth:`fetch` per
attempt):

* :class:`DirectTransport` connects to the address pinned by
  :func:`~dyntoolset.health.guard.pin_address` with the standard library
  (``socket`` + ``ssl`` + ``http.client``'s response parser). Using our own
  connect is what makes the SSRF guards real: the address that was checked is
  the address that is dialled, redirects are never followed, nothing but a
  fixed ``GET`` with no credentials is sent, and every read is bounded by the
  attempt's deadline (a server dripping one byte a second cannot stretch it).
* :class:`dyntoolset.kube.proxy.ApiServerProxyTransport` asks the API
  server's service proxy, for running outside the cluster; it lives in
  ``kube/``, the only package that talks to the Kubernetes API, and is
  handed to the checker as its ``transport``.

Both raise :class:`ProbeFailure` with a reason, or return an :class:`Answer`
whose status the checker judges.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import attrs

from dyntoolset.health.guard import (
    Blocked,
    IPAddress,
    IPNetwork,
    Resolver,
    Target,
    pin_address,
    system_resolver,
)
from dyntoolset.model import Discovered

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "Answer",
    "Cancellation",
    "DirectTransport",
    "Prepared",
    "ProbeFailure",
    "Transport",
    "read_capped",
]

USER_AGENT = "dyntoolset-health-check/1"
# Reason names (see docs/health-checks.md).
OK = "ok"
TIMEOUT = "timeout"
CONNECTION_REFUSED = "connection_refused"
CONNECTION_ERROR = "connection_error"
DNS = "dns"
HTTP_STATUS = "http_status"
BLOCKED = "blocked"
TLS = "tls"
#: Healthy without a check: ``health_check.kind: none``, or a TCP check that
#: the API server's proxy cannot make (the detail says which).
UNCHECKED = "unchecked"
REASONS = (
    OK,
    TIMEOUT,
    CONNECTION_REFUSED,
    CONNECTION_ERROR,
    DNS,
    HTTP_STATUS,
    BLOCKED,
    TLS,
    UNCHECKED,
)


class ProbeFailure(Exception):
    """One attempt failed before an HTTP status was received."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@attrs.frozen(slots=True)
class Answer:
    """An HTTP answer: status, the first bytes of the body, a redirect target if any."""

    status: int
    body: bytes = b""
    location: str = ""


@attrs.frozen(slots=True)
class Prepared:
    """A check ready to be attempted: the target and how to reach it."""

    target: Target
    #: Direct mode: the pinned address to dial.
    address: IPAddress | None = None
    #: Proxy mode: the API server path of the service proxy request.
    proxy_path: str = ""


class Cancellation:
    """Cancels a cycle's in-flight attempts at its deadline.

    Attempts register their sockets; :meth:`cancel` shuts them all down so
    blocked reads return at once instead of running out their timeouts, and
    threads do not outlive the cycle. Backoff sleeps wait on :attr:`event`.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self.event.is_set()

    def register(self, sock: socket.socket) -> None:
        """Track ``sock``; shut it down right away if already cancelled."""
        with self._lock:
            self._sockets.add(sock)
        if self.event.is_set():
            _shutdown(sock)

    def unregister(self, sock: socket.socket) -> None:
        """Stop tracking ``sock``."""
        with self._lock:
            self._sockets.discard(sock)

    def cancel(self) -> None:
        """Set the event and shut down every registered socket."""
        self.event.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Transport(Protocol):
    """How attempts reach a service (direct or through the API server)."""

    name: str

    def prepare(self, discovered: Discovered, target: Target) -> Prepared:
        """Once per check: resolve/validate; raises Blocked or ProbeFailure."""

    def fetch(self, prepared: Prepared, timeout: float, cancel: Cancellation) -> Answer:
        """One attempt within ``timeout`` seconds; raises ProbeFailure."""


# -- direct -------------------------------------------------------------------


class _DeadlineReader(io.RawIOBase):
    """A socket reader whose every ``recv`` is bounded by one overall deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("attempt timed out")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What ``http.client.HTTPResponse`` needs of a socket: ``makefile``."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("attempt timed out")
    return remaining


Connector = Callable[[tuple[str, int], float], socket.socket]


def _connect(address: tuple[str, int], timeout: float) -> socket.socket:
    return socket.create_connection(address, timeout=timeout)


class DirectTransport:
    """Attempts over a direct connection to the pinned, validated address.

    ``resolver`` maps a host name to addresses (injectable: tests map a
    ``*.svc.cluster.local`` name to ``127.0.0.1``); ``connect`` opens the TCP
    connection (injectable so tests can prove a refused check never dials).
    """

    name = "direct"

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        resolver: Resolver = system_resolver,
        allowed_networks: Sequence[IPNetwork] = (),
        max_body_bytes: int = 65536,
        connect: Connector = _connect,
    ) -> None:
        self._ssl = ssl_context
        self._resolver = resolver
        self._allowed = tuple(allowed_networks)
        self._max_body = max_body_bytes
        self._connect = connect

    def prepare(self, discovered: Discovered, target: Target) -> Prepared:
        """Resolve once and pin the address; raises Blocked or ProbeFailure(dns)."""
        from dyntoolset.health.guard import ResolutionFailed

        try:
            address = pin_address(target.host, self._resolver, self._allowed)
        except ResolutionFailed as exc:
            raise ProbeFailure(DNS, str(exc)) from None
        return Prepared(target=target, address=address)

    def connect_only(self, prepared: Prepared, timeout: float, cancel: Cancellation) -> None:
        """One TCP check: connect to the pinned address within ``timeout``, send
        nothing, close. Raises :class:`ProbeFailure` when the connection fails."""
        assert prepared.address is not None
        sock: socket.socket | None = None
        try:
            sock = self._connect((str(prepared.address), prepared.target.port), timeout)
            cancel.register(sock)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reason
            if cancel.cancelled:
                raise ProbeFailure(TIMEOUT, "cycle deadline reached") from None
            raise _failure(exc) from None
        finally:
            if sock is not None:
                cancel.unregister(sock)
                with contextlib.suppress(OSError):
                    sock.close()

    def fetch(self, prepared: Prepared, timeout: float, cancel: Cancellation) -> Answer:
        """One ``GET`` to the pinned address; the whole exchange ends within ``timeout``."""
        target = prepared.target
        assert prepared.address is not None
        deadline = time.monotonic() + timeout
        sock: socket.socket | None = None
        try:
            sock = self._connect((str(prepared.address), target.port), timeout)
            cancel.register(sock)
            if target.scheme == "https":
                raw = sock
                sock = self._ssl.wrap_socket(
                    raw, server_hostname=target.host, do_handshake_on_connect=False
                )
                cancel.unregister(raw)
                cancel.register(sock)
                sock.settimeout(_remaining(deadline))
                sock.do_handshake()
            sock.settimeout(_remaining(deadline))
            request = (
                f"GET {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
                f"User-Agent: {USER_AGENT}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            )
            sock.sendall(request.encode("ascii"))
            response = http.client.HTTPResponse(
                _DeadlineSocket(sock, deadline),  # type: ignore[arg-type]
                method="GET",
            )
            response.begin()
            status = response.status
            location = response.getheader("Location") or ""
            body = read_capped(response.read, self._max_body)
            return Answer(status=status, body=body, location=location[:512])
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reason
            if cancel.cancelled:
                raise ProbeFailure(TIMEOUT, "cycle deadline reached") from None
            raise _failure(exc) from None
        finally:
            if sock is not None:
                cancel.unregister(sock)
                with contextlib.suppress(OSError):
                    sock.close()


def read_capped(read: Callable[[int], bytes], cap: int) -> bytes:
    """Up to ``cap`` bytes of the body; best effort (the status is the verdict)."""
    chunks: list[bytes] = []
    total = 0
    try:
        while total < cap:
            data = read(min(65536, cap - total))
            if not data:
                break
            chunks.append(data)
            total += len(data)
    except (OSError, http.client.HTTPException, ValueError):
        pass
    return b"".join(chunks)


def _failure(exc: BaseException) -> ProbeFailure:
    """Map an exception from one attempt to a reason."""
    if isinstance(exc, ProbeFailure):
        return exc
    if isinstance(exc, Blocked):
        return ProbeFailure(BLOCKED, str(exc))
    if isinstance(exc, TimeoutError):
        return ProbeFailure(TIMEOUT, str(exc) or "timed out")
    if isinstance(exc, ConnectionRefusedError):
        return ProbeFailure(CONNECTION_REFUSED, str(exc))
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ProbeFailure(TLS, getattr(exc, "verify_message", None) or str(exc))
    if isinstance(exc, http.client.HTTPException):
        return ProbeFailure(CONNECTION_ERROR, f"bad HTTP response: {type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):
        return ProbeFailure(CONNECTION_ERROR, f"{type(exc).__name__}: {exc}")
    return ProbeFailure(CONNECTION_ERROR, f"{type(exc).__name__}: {exc}")
