"""``python -m dyntoolset.testing.apiserver``: serve manifests, write a kubeconfig, stop on SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from dyntoolset.manifests import read_manifests

HERE = Path(__file__).parent
EXAMPLES = HERE.parent.parent / "examples" / "cluster"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Running:
    def __init__(self, process: subprocess.Popen[str], kubeconfig: Path) -> None:
        self.process = process
        self.kubeconfig = kubeconfig


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str) -> Running:
        kubeconfig = tmp_path / f"kubeconfig-{len(processes)}"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dyntoolset.testing.apiserver",
                *args,
                "--port",
                str(free_port()),
                "--kubeconfig",
                str(kubeconfig),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        processes.append(process)
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "Kubernetes API emulator serving" in first, (
            process.stderr.read() if process.stderr else ""
        )
        deadline = time.monotonic() + 10
        while not kubeconfig.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return Running(process, kubeconfig)

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def services(kubeconfig: Path) -> list[tuple[str, str]]:
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        items = (
            client.CoreV1Api(api_client)
            .list_service_for_all_namespaces(_request_timeout=(2, 5))
            .items
        )
    finally:
        api_client.close()
    return [(s.metadata.namespace, s.metadata.name) for s in items]


def test_serves_manifests_until_interrupted(serve: object) -> None:
    running = serve(  # type: ignore[operator]
        "--manifests",
        str(HERE / "manifests" / "cluster.yaml"),
        "--manifests",
        str(HERE / "manifests" / "more.json"),
    )
    assert services(running.kubeconfig) == [
        ("monitoring", "grafana"),
        ("monitoring", "prometheus"),
        ("tracing", "jaeger-query"),
    ]
    api_client = config.new_client_from_config(config_file=str(running.kubeconfig))
    v1 = client.CoreV1Api(api_client)
    assert v1.read_namespaced_config_map("dyntoolset-toolsets", "tracing").data == {
        "overrides.yaml": "toolsets: {}\n"
    }
    # Every namespace holding an object exists, as do the system ones.
    assert [n.metadata.name for n in v1.list_namespace().items] == [
        "default",
        "kube-node-lease",
        "kube-public",
        "kube-system",
        "monitoring",
        "tracing",
    ]
    api_client.close()
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=10) == 0


def test_token_flag_requires_authentication(serve: object) -> None:
    running = serve("--token", "t0ken")  # type: ignore[operator]
    assert "t0ken" in running.kubeconfig.read_text(encoding="utf-8")
    assert services(running.kubeconfig) == []
    config_text = running.kubeconfig.read_text(encoding="utf-8").replace("t0ken", "wrong")
    running.kubeconfig.write_text(config_text, encoding="utf-8")
    with pytest.raises(client.exceptions.ApiException) as caught:
        services(running.kubeconfig)
    assert caught.value.status == 401
    running.process.terminate()
    assert running.process.wait(timeout=10) == 0


def test_strict_fails_on_manifest_problems(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dyntoolset.testing.apiserver",
            "--strict",
            "--manifests",
            str(tmp_path / "missing.yaml"),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/cluster/ is not in this checkout")
def test_serves_the_example_cluster(serve: object) -> None:
    expected = sorted(
        (o.obj["metadata"].get("namespace") or "default", o.obj["metadata"]["name"])
        for o in read_manifests([str(EXAMPLES)]).objects
        if o.kind == "Service"
    )
    running = serve("--manifests", str(EXAMPLES))  # type: ignore[operator]
    assert services(running.kubeconfig) == expected
    assert len(expected) > 5


def test_proxy_flag_forwards_to_a_backend(serve: object) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    backend = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=backend.serve_forever, args=(0.05,), daemon=True).start()
    try:
        running = serve(  # type: ignore[operator]
            "--manifests",
            str(HERE / "manifests" / "cluster.yaml"),
            "--proxy",
            f"monitoring/prometheus:web=http://127.0.0.1:{backend.server_address[1]}",
        )
        api_client = config.new_client_from_config(config_file=str(running.kubeconfig))
        response = client.CoreV1Api(api_client).connect_get_namespaced_service_proxy_with_path(
            "prometheus:9090", "monitoring", "-/healthy", _preload_content=False
        )
        assert (response.status, response.data) == (200, b"ok")
        api_client.close()
    finally:
        backend.shutdown()
        backend.server_close()


def test_malformed_proxy_flag_is_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dyntoolset.testing.apiserver", "--proxy", "nonsense"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "NS/SVC:PORT=URL" in result.stderr


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dyntoolset.testing.apiserver", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--port", "99999"), "argument --port: 99999 is not in 0..65535"),
        (("--port", "-1"), "argument --port: -1 is not in 0..65535"),
        (("--port", "http"), "argument --port: 'http' is not a number"),
        (("--host", "::"), "'::' is not a loopback address"),
        (("--host", "0.0.0.0"), "--allow-non-loopback"),
        (("--history-limit", "0"), "argument --history-limit: 0 is not in 1.."),
        (("--bookmark-interval", "nan"), "argument --bookmark-interval: nan is not in"),
    ],
)
def test_bad_listen_options_are_usage_errors_not_tracebacks(
    args: tuple[str, ...], message: str
) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_an_address_that_cannot_be_bound_is_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("--port", str(taken.getsockname()[1]))
    assert result.returncode == 1
    assert "error: cannot listen on 127.0.0.1 port" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_help_tells_the_truth_about_non_loopback_hosts() -> None:
    result = run_cli("--help")
    assert "only loopback addresses" in " ".join(result.stdout.split())
    assert "--allow-non-loopback" in result.stdout


def test_a_wildcard_host_needs_the_explicit_flag_and_is_reached_on_loopback(
    serve: object,
) -> None:
    running = serve("--host", "0.0.0.0", "--allow-non-loopback")  # type: ignore[operator]
    text = running.kubeconfig.read_text(encoding="utf-8")
    assert "server: http://127.0.0.1:" in text
    assert services(running.kubeconfig) == []


def test_review_token_and_allow_flags_drive_the_reviews(serve: object) -> None:
    running = serve(  # type: ignore[operator]
        "--review-token", "op-token=operator", "--allow", "operator=create:/api/v1/config/*"
    )
    api_client = config.new_client_from_config(str(running.kubeconfig))
    try:
        review = client.AuthenticationV1Api(api_client).create_token_review(
            {"spec": {"token": "op-token"}}
        )
        assert review.status.authenticated and review.status.user.username == "operator"
        authz = client.AuthorizationV1Api(api_client)

        def allowed(verb: str) -> bool:
            spec = {
                "user": "operator",
                "nonResourceAttributes": {"path": "/api/v1/config/reload", "verb": verb},
            }
            return bool(authz.create_subject_access_review({"spec": spec}).status.allowed)

        assert allowed("create") and not allowed("get")
    finally:
        api_client.close()
    running.process.terminate()
    assert running.process.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--review-token", "no-user"), ("--allow", "alice=get"), ("--allow", "=get:/x")],
)
def test_malformed_review_flags_exit_2(flag: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dyntoolset.testing.apiserver", flag, value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and f"error: {flag} {value!r}" in result.stderr
