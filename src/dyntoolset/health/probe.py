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
* :class:`ApiServerProxyTransport` asks the API server's service proxy
  (``/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/{path}``) with the
  Kubernetes client's own connection pool and credentials, for running
  outside the cluster where ``*.svc.cluster.local`` does not resolve. The
  credentials go to the API server only: it authenticates the request and
  removes the ``Authorization`` header before proxying.

Both raise :class:`ProbeFailure` with a reason, or return an :class:`Answer`
whose status the checker judges.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import io
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from dyntoolset import urlpolicy
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
    "ApiServerProxyTransport",
    "Cancellation",
    "DirectTransport",
    "Prepared",
    "ProbeFailure",
    "Transport",
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
REASONS = (OK, TIMEOUT, CONNECTION_REFUSED, CONNECTION_ERROR, DNS, HTTP_STATUS, BLOCKED, TLS)


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
            body = _read_capped(response.read, self._max_body)
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


def _read_capped(read: Callable[[int], bytes], cap: int) -> bytes:
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


# -- through the API server ----------------------------------------------------


class ApiServerProxyTransport:
    """Attempts through the API server's service proxy, with the client's credentials.

    ``api_client`` is a ``kubernetes.client.ApiClient``; its configured host,
    TLS settings, client certificate and bearer token are used (the token
    only ever goes to the API server). Redirects are not followed and urllib3
    retries are off: the checker owns the one retry policy.
    """

    name = "apiserver-proxy"

    def __init__(
        self, api_client: Any, *, max_body_bytes: int = 65536, max_connections: int = 0
    ) -> None:
        self._client = api_client
        self._max_body = max_body_bytes
        self._pool_manager = _pool_for(api_client, max_connections)

    def prepare(self, discovered: Discovered, target: Target) -> Prepared:
        """Build ``/api/v1/namespaces/{ns}/services/[https:]{name}:{port}/proxy{path}``."""
        svc = discovered.service
        problem = urlpolicy.dns1035_label_problem(
            svc.name, "Service name"
        ) or urlpolicy.dns_label_problem(svc.namespace, "namespace")
        if problem:
            raise Blocked(problem)
        scheme = "https:" if target.scheme == "https" else ""
        path = (
            f"/api/v1/namespaces/{svc.namespace}/services/{scheme}{svc.name}:{target.port}"
            f"/proxy{target.path}"
        )
        return Prepared(target=target, proxy_path=path)

    def fetch(self, prepared: Prepared, timeout: float, cancel: Cancellation) -> Answer:
        """One ``GET`` through the proxy within ``timeout``."""
        import urllib3

        client = self._client
        headers: dict[str, str] = {"Accept": "*/*", "User-Agent": USER_AGENT}
        queries: list[tuple[str, str]] = []
        client.update_params_for_auth(
            headers, queries, ["BearerToken"], prepared.proxy_path, "GET", None
        )
        url = client.configuration.host.rstrip("/") + prepared.proxy_path
        if queries:
            from urllib.parse import urlencode

            url += "?" + urlencode(queries)
        deadline = time.monotonic() + timeout
        try:
            response = (self._pool_manager or client.rest_client.pool_manager).request(
                "GET",
                url,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes a reason
            if cancel.cancelled:
                raise ProbeFailure(TIMEOUT, "cycle deadline reached") from None
            raise _urllib3_failure(exc) from None
        # urllib3 bounds each read, not the whole body: a body dripped a byte at a
        # time would keep ``read(n)`` going forever. So read one chunk at a time,
        # each bounded by what is left of the attempt, and let the round's
        # cancellation shut the socket down like a direct attempt's.
        sock = _response_socket(response)
        if sock is not None:
            cancel.register(sock)

        def read_chunk(n: int) -> bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or cancel.cancelled:
                return b""
            if sock is not None:
                sock.settimeout(remaining)
            try:
                return bytes(response.read1(n, decode_content=False))
            except urllib3.exceptions.HTTPError:
                return b""  # best effort, as in direct mode: the status is the verdict

        try:
            body = _read_capped(read_chunk, self._max_body)
        finally:
            if sock is not None:
                cancel.unregister(sock)
            with contextlib.suppress(Exception):
                response.close()
            with contextlib.suppress(Exception):
                response.release_conn()
        status = int(response.status)
        failure = _apiserver_failure(status, response.headers.get("Content-Type", ""), body)
        if failure is not None:
            raise failure
        return Answer(
            status=status, body=body, location=str(response.headers.get("Location", ""))[:512]
        )


def _pool_for(api_client: Any, max_connections: int) -> Any:
    """A pool manager like ``api_client``'s but holding ``max_connections``, or ``None``.

    The client's pool keeps ``cpu_count * 5`` connections by default; a round
    with more checks in flight than that makes urllib3 discard the surplus
    with a WARNING each, every round. Same configuration (host, TLS, client
    certificate, proxy), so only the size differs; credentials still come
    from ``api_client`` per request.
    """
    configuration: Any = getattr(api_client, "configuration", None)
    size = getattr(configuration, "connection_pool_maxsize", None)
    if not max_connections or not isinstance(size, int) or size >= max_connections:
        return None
    from kubernetes.client.rest import RESTClientObject

    sized = copy.copy(configuration)
    sized.connection_pool_maxsize = max_connections
    return RESTClientObject(sized).pool_manager


def _response_socket(response: Any) -> socket.socket | None:
    """The socket under a urllib3 response (``None`` if urllib3 does not expose it)."""
    sock = getattr(getattr(response, "connection", None), "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _urllib3_failure(exc: BaseException) -> ProbeFailure:
    from urllib3 import exceptions as u3

    if isinstance(exc, u3.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, u3.TimeoutError | TimeoutError):
        return ProbeFailure(TIMEOUT, f"API server proxy: {exc}")
    if isinstance(exc, u3.SSLError | ssl.SSLError):
        return ProbeFailure(TLS, f"API server: {exc}")
    if isinstance(exc, u3.NewConnectionError):
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ConnectionRefusedError) or "refused" in str(exc).lower():
            return ProbeFailure(CONNECTION_REFUSED, f"API server: {exc}")
    return ProbeFailure(CONNECTION_ERROR, f"API server proxy: {type(exc).__name__}: {exc}")


# Messages of the API server's own proxy errors (a Status object), by reason.
_PROXY_ERRORS = (
    (TIMEOUT, ("i/o timeout", "timeout", "timed out", "deadline exceeded")),
    (CONNECTION_REFUSED, ("connection refused", "no endpoints available")),
    (DNS, ("no such host", "lookup ")),
    (TLS, ("x509", "tls:", "certificate")),
)


def _apiserver_failure(status: int, content_type: str, body: bytes) -> ProbeFailure | None:
    """A failure if the answer is the API server's own error rather than the backend's.

    The proxy answers ``503 {"kind": "Status", "message": "error trying to
    reach service: dial tcp …: connection refused"}`` when it cannot reach
    the backend; that is a connection failure, not an HTTP status of the
    service. 401/403 mean the client may not use the proxy (RBAC needs
    ``get`` on ``services/proxy``).
    """
    if status < 400 or "json" not in content_type.lower():
        return None
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("kind") != "Status":
        return None
    message = str(document.get("message", ""))[:300]
    lowered = message.lower()
    if status in (401, 403):
        return ProbeFailure(
            HTTP_STATUS, f"API server refused the proxy request ({status}): {message}"
        )
    for reason, needles in _PROXY_ERRORS:
        if any(n in lowered for n in needles):
            return ProbeFailure(reason, f"API server proxy ({status}): {message}")
    return None
