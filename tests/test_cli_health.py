"""``dyntoolset discover --health-check`` against real HTTP servers on loopback.

Only name resolution is replaced (``*.svc.cluster.local`` does not resolve
here): every request is real HTTP to a real server.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from dyntoolset.cli import main
from dyntoolset.health import guard


class Healthy(BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        body = b"Prometheus Server is Healthy.\n"
        self.send_response(200 if self.path == "/-/healthy" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def prometheus_like():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Healthy.paths = []
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service(name: str, port: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "monitoring",
            "labels": {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": name},
        },
        "spec": {"clusterIP": "10.0.0.1", "ports": [{"name": "http-web", "port": port}]},
    }


def test_only_services_that_answer_are_emitted(prometheus_like, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DYNTOOLSET_LOAD_PLUGINS", "")
    monkeypatch.setattr(guard, "system_resolver", lambda host: ["127.0.0.1"])
    manifests = tmp_path / "svcs.yaml"
    manifests.write_text(
        yaml.safe_dump_all([service("up", prometheus_like), service("down", closed_port())])
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        "health_checks: {allowed_networks: ['127.0.0.0/8']}\n"
        "detectors: {prometheus: {health_check: {timeout: 2s, retries: 0}}}\n"
    )
    code = main(
        ["discover", "-f", str(manifests), "-c", str(config), "--health-check", "-o", "kubernaut"]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert [t["name"] for t in yaml.safe_load(out)["tools"]] and all(
        t["endpoint"].startswith("http://up.") for t in yaml.safe_load(out)["tools"]
    )
    assert "[health: ok" in err and "[health: connection_refused" in err
    assert "1 left out as unhealthy" in err
    assert Healthy.paths == ["/-/healthy"]


def test_loopback_is_refused_unless_allowed(prometheus_like, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DYNTOOLSET_LOAD_PLUGINS", "")
    monkeypatch.setattr(guard, "system_resolver", lambda host: ["127.0.0.1"])
    manifests = tmp_path / "svcs.yaml"
    manifests.write_text(yaml.safe_dump(service("up", prometheus_like)))
    code = main(["discover", "-f", str(manifests), "--health-check", "-o", "kubernaut"])
    out, err = capsys.readouterr()
    assert code == 0
    assert yaml.safe_load(out)["tools"] == []
    assert "[health: blocked" in err
    assert Healthy.paths == []  # no request left the process


def test_a_ca_file_that_cannot_be_read_is_a_configuration_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DYNTOOLSET_LOAD_PLUGINS", "")
    config = tmp_path / "cfg.yaml"
    config.write_text(f"health_checks: {{ca_file: {tmp_path / 'absent.pem'}}}\n")
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(
        "kind: Service\nmetadata: {name: p, labels: {app.kubernetes.io/name: prometheus}}\n"
        "spec: {ports: [{port: 9090, name: web}]}\n"
    )
    code = main(["discover", "-f", str(manifest), "-c", str(config), "--health-check"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.splitlines()[-1] == (
        f"dyntoolset: cannot run health checks: health_checks.ca_file "
        f"'{tmp_path / 'absent.pem'}': [Errno 2] No such file or directory"
    )
