"""The service proxy subresource forwards to backends the test registers."""

from __future__ import annotations

import json
import select
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiServer

from .conftest import service


class Backend(BaseHTTPRequestHandler):
    """Echoes what it received as JSON; /-/healthy answers 200, /broken 500."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = {
            "method": self.command,
            "path": self.path,
            "body": self.rfile.read(length).decode() if length else "",
            "authorization": self.headers.get("Authorization"),
        }
        status = 500 if self.path.startswith("/broken") else 200
        payload = json.dumps(received).encode()
        if self.path.startswith("/redirect"):
            status = 302
            self.send_response(status)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Retry-After", "7")
        else:
            self.send_response(status)
        self.send_header("X-Backend", "yes")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer


@pytest.fixture
def backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def prometheus(apiserver: ApiServer, backend: str) -> None:
    apiserver.create(service("prometheus", "monitoring", ports=[{"name": "web", "port": 9090}]))
    apiserver.register_proxy("monitoring", "prometheus", 9090, backend)


def test_get_through_the_proxy(prometheus: None, v1: client.CoreV1Api) -> None:
    response = v1.connect_get_namespaced_service_proxy_with_path(
        "prometheus:9090", "monitoring", "-/healthy", _preload_content=False
    )
    assert response.status == 200
    assert json.loads(response.data)["path"] == "/-/healthy"


def test_port_name_and_query_string(prometheus: None, apiserver: ApiServer) -> None:
    pool = apiserver.api_client.rest_client.pool_manager
    url = (
        f"{apiserver.url}/api/v1/namespaces/monitoring/services/prometheus:web/proxy"
        "/api/v1/query?query=up%7Bjob%3D%22x%22%7D"
    )
    response = pool.request("GET", url, headers={"Authorization": "Bearer secret"})
    assert response.status == 200
    received = json.loads(response.data)
    assert received["path"] == "/api/v1/query?query=up%7Bjob%3D%22x%22%7D"
    assert received["authorization"] is None  # the caller's credentials stay at the API server
    record = apiserver.find_requests(verb="proxy")[-1]
    assert (record.resource, record.namespace, record.name, record.status) == (
        "services",
        "monitoring",
        "prometheus:web",
        200,
    )


def test_single_port_service_without_port_and_post_body(
    prometheus: None, apiserver: ApiServer
) -> None:
    pool = apiserver.api_client.rest_client.pool_manager
    url = f"{apiserver.url}/api/v1/namespaces/monitoring/services/prometheus/proxy/echo"
    response = pool.request("POST", url, body=b"hello", headers={"Content-Type": "text/plain"})
    assert json.loads(response.data) == {
        "method": "POST",
        "path": "/echo",
        "body": "hello",
        "authorization": None,
    }


def test_backend_status_is_passed_through(prometheus: None, v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        v1.connect_get_namespaced_service_proxy_with_path("prometheus:9090", "monitoring", "broken")
    assert caught.value.status == 500
    assert json.loads(caught.value.body)["path"] == "/broken"


def test_backend_headers_are_passed_through(prometheus: None, apiserver: ApiServer) -> None:
    # As the real proxy (httputil.ReverseProxy): the backend's headers reach the
    # client, minus hop-by-hop ones; a redirect is passed on, not followed.
    pool = apiserver.api_client.rest_client.pool_manager
    url = f"{apiserver.url}/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/redirect"
    response = pool.request("GET", url, redirect=False, retries=False)
    assert response.status == 302
    assert response.headers["Location"] == "http://169.254.169.254/latest/meta-data/"
    assert response.headers["Retry-After"] == "7"
    assert response.headers["X-Backend"] == "yes"
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers.get("Connection", "").lower() != "close"  # not the backend's


def test_missing_service_is_404(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        v1.connect_get_namespaced_service_proxy_with_path("nope:80", "default", "x")
    assert caught.value.status == 404
    assert json.loads(caught.value.body)["message"] == 'services "nope" not found'


def test_no_registered_backend_is_503(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(service("lonely"))
    with pytest.raises(ApiException) as caught:
        v1.connect_get_namespaced_service_proxy_with_path("lonely:80", "default", "x")
    assert caught.value.status == 503
    assert json.loads(caught.value.body)["reason"] == "ServiceUnavailable"


def test_unreachable_backend_is_503(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    apiserver.create(service("down"))
    apiserver.register_proxy("default", "down", 80, f"http://127.0.0.1:{port}")
    with pytest.raises(ApiException) as caught:
        v1.connect_get_namespaced_service_proxy_with_path("down:80", "default", "x")
    assert caught.value.status == 503
    assert "error trying to reach service" in json.loads(caught.value.body)["message"]


def test_stop_ends_a_proxy_request_waiting_on_its_backend(apiserver_factory: Any) -> None:
    import socket
    import time

    import urllib3

    # A backend that accepts the connection (the kernel does) but never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    try:
        api = apiserver_factory(proxy_timeout=30.0)
        api.create(service("silent"))
        api.register_proxy("default", "silent", 80, f"http://127.0.0.1:{port}")
        before = set(threading.enumerate())
        outcome: list[object] = []

        def call() -> None:
            http = urllib3.PoolManager(retries=False)
            try:
                # An error, or a 503 if the cut backend connection is noticed first.
                outcome.append(
                    http.request(
                        "GET",
                        f"{api.url}/api/v1/namespaces/default/services/silent:80/proxy/",
                        timeout=30.0,
                    ).status
                )
            except urllib3.exceptions.HTTPError as exc:
                outcome.append(exc)
            finally:
                http.clear()

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        readable, _, _ = select.select([silent], [], [], 10)
        assert readable, "the emulator never connected to the backend"
        started = time.monotonic()
        api.stop()
        assert time.monotonic() - started < 10
        caller.join(10)
        assert not caller.is_alive()
        assert outcome and outcome[0] != 200
        # Nothing the emulator started for that request outlives stop().
        leftover = [t for t in threading.enumerate() if t not in before and t is not caller]
        assert leftover == []
    finally:
        silent.close()
