"""Health checks through the API server's service proxy, and the choice of transport.

:class:`ApiServerProxyTransport` asks the API server's service proxy
(``/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/{path}``) with the
Kubernetes client's own connection pool and credentials, for running outside
the cluster where ``*.svc.cluster.local`` does not resolve. The credentials go
to the API server only: it authenticates the request and removes the
``Authorization`` header before proxying.

:func:`health_transport` resolves ``health_checks.mode`` (``auto``: direct in
a cluster, the proxy outside) into the transport the
:class:`~dyntoolset.health.HealthChecker` is given.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import ssl
import threading
import time
from typing import Any

from dyntoolset import urlpolicy
from dyntoolset.config import GlobalHealthChecks
from dyntoolset.health.guard import Blocked, Target
from dyntoolset.health.probe import (
    CONNECTION_ERROR,
    CONNECTION_REFUSED,
    DNS,
    HTTP_STATUS,
    TIMEOUT,
    TLS,
    USER_AGENT,
    Answer,
    Cancellation,
    Prepared,
    ProbeFailure,
    read_capped,
)
from dyntoolset.kube.incluster import in_cluster
from dyntoolset.model import Discovered

__all__ = ["ApiServerProxyTransport", "health_transport"]


def health_transport(
    options: GlobalHealthChecks, api_client: Any, *, inside: bool | None = None
) -> ApiServerProxyTransport | None:
    """The transport for ``options.mode``: ``None`` means direct connections.

    ``auto`` is direct inside a cluster (``inside``, default: detected with
    :func:`~dyntoolset.kube.incluster.in_cluster`) and the API server's proxy
    outside, where Service DNS names do not resolve. Raises ``ValueError``
    for ``apiserver-proxy`` without a client.
    """
    mode = options.mode
    if mode == "auto":
        inside = in_cluster() if inside is None else inside
        mode = "direct" if inside or api_client is None else "apiserver-proxy"
    if mode == "direct":
        return None
    if api_client is None:
        raise ValueError("health_checks.mode apiserver-proxy needs a Kubernetes client")
    return ApiServerProxyTransport(
        api_client,
        max_body_bytes=options.max_body_bytes,
        max_connections=options.proxy_connections,
    )


class ApiServerProxyTransport:
    """Attempts through the API server's service proxy, with the client's credentials.

    ``api_client`` is a ``kubernetes.client.ApiClient``; its configured host,
    TLS settings, client certificate and bearer token are used (the token
    only ever goes to the API server). Redirects are not followed and urllib3
    retries are off: the checker owns the one retry policy.

    At most ``max_connections`` attempts are in flight at once, each on one
    connection (default: ``health_checks.proxy_connections``'s), however many
    workers the checker runs: the others wait for a slot. The wait ends when
    one frees or when the round is cancelled, and is not taken from the
    attempt's ``timeout``, which starts once the attempt holds its slot (a
    queue on our side says nothing about the service).
    """

    name = "apiserver-proxy"

    def __init__(
        self, api_client: Any, *, max_body_bytes: int = 65536, max_connections: int | None = None
    ) -> None:
        if max_connections is None:
            max_connections = int(GlobalHealthChecks().proxy_connections)
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self._client = api_client
        self._max_body = max_body_bytes
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
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
        """One ``GET`` through the proxy within ``timeout``, once a connection slot is free."""
        if not self._take_slot(cancel):
            raise ProbeFailure(
                TIMEOUT, "cycle deadline reached waiting for an API server connection"
            )
        try:
            return self._fetch(prepared, timeout, cancel)
        finally:
            self._slots.release()

    def _take_slot(self, cancel: Cancellation) -> bool:
        """Wait for one of the ``max_connections`` slots; ``False`` if cancelled first.

        The semaphore cannot also wait on the cancellation's event, so the
        wait looks at it between short waits: a cancelled round frees its
        waiting workers within ``_SLOT_POLL`` seconds.
        """
        while not cancel.cancelled:
            if self._slots.acquire(timeout=_SLOT_POLL):
                if not cancel.cancelled:
                    return True
                # Freed by the cut that cancelled the round: no new request after it.
                self._slots.release()
        return False

    def _fetch(self, prepared: Prepared, timeout: float, cancel: Cancellation) -> Answer:
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
            body = read_capped(read_chunk, self._max_body)
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


#: Seconds between looks at the round's cancellation while waiting for a slot.
_SLOT_POLL = 0.05


def _pool_for(api_client: Any, max_connections: int) -> Any:
    """A pool manager like ``api_client``'s but holding ``max_connections``, or ``None``.

    The client's pool keeps ``cpu_count * 5`` connections by default; more
    attempts in flight than that make urllib3 discard the surplus with a
    WARNING each, every round. Same configuration (host, TLS, client
    certificate, proxy), so only the size differs; credentials still come
    from ``api_client`` per request.
    """
    configuration: Any = getattr(api_client, "configuration", None)
    size = getattr(configuration, "connection_pool_maxsize", None)
    if not isinstance(size, int) or size >= max_connections:
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
