"""Real loopback servers and helpers for the health-check tests.

Everything listens on 127.0.0.1 only. ``Backend`` is a threaded HTTP server
whose behaviour is a script (a function of the request number); ``BlackHole``
is a listening socket that never accepts, which doubles as the detector in
SSRF tests ("did anything try to connect here?").
"""

from __future__ import annotations

import select
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs

from dyntoolset.config import DetectorHealthCheck, GlobalHealthChecks
from dyntoolset.model import Discovered, Port, Service

LOOPBACK = "127.0.0.0/8"


@attrs.define
class Request:
    """One request a backend received."""

    method: str
    path: str
    headers: dict[str, str]
    at: float


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    def _any(self) -> None:
        backend = self.server.backend
        with backend.lock:
            index = len(backend.requests)
            backend.requests.append(
                Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    time.monotonic(),
                )
            )
            backend.in_flight += 1
            backend.max_in_flight = max(backend.max_in_flight, backend.in_flight)
        try:
            backend.script(index, self)
        except OSError:
            pass
        finally:
            with backend.lock:
                backend.in_flight -= 1

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops SYNs under a parallel round
    backend: Backend


Script = Callable[[int, BaseHTTPRequestHandler], None]


def reply(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"ok",
    headers: dict[str, str] | None = None,
) -> None:
    """Send a complete response."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Content-Type", "text/plain")
    handler.end_headers()
    handler.wfile.write(body)


def status(code: int, body: bytes = b"ok") -> Script:
    return lambda _i, h: reply(h, code, body)


def sequence(*codes: int) -> Script:
    """Answer the i-th request with codes[i] (the last code repeats)."""
    return lambda i, h: reply(h, codes[min(i, len(codes) - 1)])


class Backend:
    """A threaded HTTP(S) server on loopback driven by a script."""

    def __init__(self, script: Script | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.script = script or status(200)
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.waiting = 0
        self.max_waiting = 0
        self.stopping = threading.Event()
        self.bytes_sent = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.backend = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    # Behaviours that need the backend itself.
    def hang(self, _i: int, handler: BaseHTTPRequestHandler) -> None:
        """Read the request, never answer (until the backend stops)."""
        self.stopping.wait(30)

    def slow(self, seconds: float) -> Script:
        """Answer 200 after ``seconds``; :attr:`max_waiting` is the peak of requests
        waiting at once (counted before the reply, so a client's next request
        cannot overlap the count)."""

        def script(_i: int, handler: BaseHTTPRequestHandler) -> None:
            with self.lock:
                self.waiting += 1
                self.max_waiting = max(self.max_waiting, self.waiting)
            stopped = self.stopping.wait(seconds)
            with self.lock:
                self.waiting -= 1
            if not stopped:
                reply(handler, 200)

        return script

    def gathered(self, count: int, hold: float) -> Script:
        """Hold every request until ``count`` have waited at the same time, then
        answer 200 after ``hold`` more seconds. :attr:`max_waiting` is then at
        least ``count`` whenever the client runs ``count`` requests in
        parallel, and exceeds it when the client sends more at once: a
        concurrency limit is checked by counting, not by timing."""
        full = threading.Event()

        def script(_i: int, handler: BaseHTTPRequestHandler) -> None:
            with self.lock:
                self.waiting += 1
                self.max_waiting = max(self.max_waiting, self.waiting)
                if self.waiting >= count:
                    full.set()
            while not full.wait(0.05) and not self.stopping.is_set():
                pass
            stopped = self.stopping.wait(hold)
            with self.lock:
                self.waiting -= 1
            if not stopped:
                reply(handler, 200)

        return script

    def huge(self, code: int = 200, size: int = 1 << 30) -> Script:
        """Announce and stream ``size`` bytes (1 GiB by default) until the client leaves."""

        def script(_i: int, handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(code)
            handler.send_header("Content-Length", str(size))
            handler.end_headers()
            chunk = b"x" * 65536
            sent = 0
            try:
                while sent < size and not self.stopping.is_set():
                    handler.wfile.write(chunk)
                    sent += len(chunk)
            finally:
                with self.lock:
                    self.bytes_sent += sent

        return script

    def drip(self, interval: float) -> Script:
        """Send the status line and headers one byte every ``interval`` seconds."""

        def script(_i: int, handler: BaseHTTPRequestHandler) -> None:
            data = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 200 + b"\r\n\r\n"
            for byte in data:
                if self.stopping.wait(interval):
                    return
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()

        return script


class BlackHole:
    """A loopback listening socket that never accepts: connections hang, and any
    connection attempt is visible (:meth:`saw_connection`)."""

    def __init__(self, backlog: int = 64) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port: int = self.sock.getsockname()[1]

    def saw_connection(self, wait: float = 0.1) -> bool:
        readable, _, _ = select.select([self.sock], [], [], wait)
        return bool(readable)

    def close(self) -> None:
        self.sock.close()


def closed_port() -> int:
    """A loopback port with nothing listening (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


class FakeResolver:
    """Maps names to addresses; unknown names fail like NXDOMAIN. Counts lookups."""

    def __init__(self, mapping: dict[str, Sequence[str]] | None = None) -> None:
        self.mapping = dict(mapping or {})
        self.calls: list[str] = []

    def __call__(self, host: str) -> Sequence[str]:
        self.calls.append(host)
        try:
            return self.mapping[host]
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


class ConnectSpy:
    """Wraps ``socket.create_connection`` and records every dial."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def __call__(self, address: tuple[str, int], timeout: float) -> socket.socket:
        with self.lock:
            self.calls.append(address)
        return socket.create_connection(address, timeout=timeout)


def service(
    name: str = "prom",
    namespace: str = "monitoring",
    port: int = 9090,
    annotations: dict[str, str] | None = None,
) -> Service:
    return Service(
        name=name,
        namespace=namespace,
        ports=(Port(port, "http"),),
        annotations=annotations or {},
        cluster_ip="10.0.0.1",
    )


def discovered(
    name: str = "prom",
    namespace: str = "monitoring",
    port: int = 9090,
    *,
    detector: str = "prometheus",
    health_path: str = "/-/healthy",
    endpoint: str | None = None,
    scheme: str = "http",
) -> Discovered:
    svc = service(name, namespace, port)
    return Discovered(
        service=svc,
        detector=detector,
        type=detector,
        endpoint=endpoint or f"{scheme}://{name}.{namespace}.svc.cluster.local:{port}",
        health_path=health_path,
        port=svc.ports[0],
    )


def options(**overrides: Any) -> GlobalHealthChecks:
    """Fast test defaults: direct mode, loopback allowed."""
    values: dict[str, Any] = {
        "mode": "direct",
        "allowed_networks": (LOOPBACK,),
        "deadline": 10.0,
        "cache_ttl": 0.001,
    }
    values.update(overrides)
    return GlobalHealthChecks(**values)


def settings(
    timeout: float = 1.0, retries: int = 0, path: str | None = None
) -> DetectorHealthCheck:
    return DetectorHealthCheck(path=path, timeout=timeout, retries=retries)  # type: ignore[arg-type]


def make_cert(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for DNS ``name`` and IP 127.0.0.1 (openssl CLI)."""
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name},IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert
