"""Every dashboard query, evaluated by a real Prometheus scraping a real ``dyntoolset run``.

The emulator serves the cluster; ``dyntoolset run`` (a subprocess, health
checks through the emulator's service proxy to real HTTP servers, plus an
installed plugin distribution whose detector raises) serves ``/metrics`` on
loopback; Debian's ``prometheus`` scrapes it every second. The test drives
what the panels show (Services added, a generated key edited, a failing
health check, an API error on the ConfigMap write), then asks Prometheus's
HTTP API for each panel query: each must be valid and return data.

Marked ``integration``: a plain ``pytest`` skips it without the Prometheus
binaries, ``--require-integration`` fails it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import textwrap
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dyntoolset.dashboard import dashboard
from dyntoolset.testing.apiserver import ApiServer
from tests.controller.test_run import Run, wait_for
from tests.kube._support import prometheus, service
from tests.kube.conftest import create_namespace

pytestmark = pytest.mark.integration

OUTPUT_NAMESPACE, OUTPUT_NAME = "kubernaut-system", "kubernaut-toolset-config"
HOLMES_KEY = "custom_toolset.yaml"

#: Grafana's variables as this test resolves them (Grafana would compute
#: $__rate_interval from the scrape interval; a minute spans the whole test).
VARIABLES = {"$__rate_interval": "1m", "$job": "dyntoolset"}

#: The installed plugin distribution: its detector raises on Services labelled app=flaky.
FLAKY_PLUGIN = textwrap.dedent(
    """
    from dyntoolset.plugin import Detector, hookimpl

    DYNTOOLSET_PLUGIN_API = "2"

    class Flaky(Detector):
        name = "flaky"
        version = "1.0"
        description = "raises on Services labelled app=flaky"
        default_priority = 0

        def detect(self, service, ctx):
            if service.labels.get("app") == "flaky":
                raise RuntimeError("flaky detector failed on purpose")
            return None

    @hookimpl
    def register_detectors():
        return [Flaky]
    """
)

CONFIG = textwrap.dedent(
    """
    resync_interval: 2
    health_checks:
      cache_ttl: 1
      deadline: 5
    """
)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def resolve(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def panel_queries() -> list[tuple[str, str]]:
    """``(panel title, expr)`` for every query of the dashboard."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


class Answer(BaseHTTPRequestHandler):
    """A backend answering every request with the server's fixed status."""

    status = 200

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = b"ok\n" if self.status == 200 else b"broken\n"
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def backends() -> Iterator[Callable[[int], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(status: int) -> str:
        handler = type("Fixed", (Answer,), {"status": status})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Prometheus:
    """Debian's prometheus on a free loopback port, scraping one target every second."""

    def __init__(self, root: Path, target: str) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail(
                "prometheus not found: apt-get install --no-install-recommends prometheus "
                "(scripts/test-deps.sh does)"
            )
        root.mkdir()
        (root / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: dyntoolset\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = root / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={root / 'tsdb'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                loaded: dict[str, Any] = json.load(response)
                return loaded
        except urllib.error.HTTPError as exc:  # 400/422: an invalid query, with its error
            loaded = json.load(exc)
            return loaded

    def query(self, expr: str) -> dict[str, Any]:
        return self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)


def install_flaky_plugin(site: Path) -> None:
    """A real installed distribution (metadata on PYTHONPATH) with the flaky detector."""
    dist_info = site / "dyntoolset_flaky-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: dyntoolset-flaky\nVersion: 1.0\n"
    )
    (dist_info / "entry_points.txt").write_text("[dyntoolset]\nflaky = dyntoolset_flaky\n")
    (site / "dyntoolset_flaky.py").write_text(FLAKY_PLUGIN)


def test_every_dashboard_query_returns_data_from_a_real_prometheus(
    apiserver: ApiServer,
    backends: Callable[[int], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create_namespace(apiserver, OUTPUT_NAMESPACE)
    apiserver.seed(
        prometheus("prometheus", "monitoring"),
        prometheus("broken", "shop"),
        service("flaky", "shop", labels={"app": "flaky"}),
        service("web", "shop"),
    )
    # Health checks go through the emulator's service proxy: one answers 200,
    # one 500 (a failing health check, reason http_status).
    apiserver.register_proxy("monitoring", "prometheus", 9090, backends(200))
    apiserver.register_proxy("shop", "broken", 9090, backends(500))
    install_flaky_plugin(tmp_path / "site")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    monkeypatch.delenv("DYNTOOLSET_LOAD_PLUGINS", raising=False)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)

    run = Run(
        tmp_path, "run", apiserver.write_kubeconfig(tmp_path / "kubeconfig"), "-c", str(config)
    )
    server: Prometheus | None = None
    try:
        host, port = run.address("metrics")
        server = prom = Prometheus(tmp_path / "prometheus", f"{host}:{port}")
        wait_for(prom.ready, "prometheus ready")

        def holmes() -> str:
            stored = apiserver.get("configmaps", OUTPUT_NAMESPACE, OUTPUT_NAME)
            return str(((stored or {}).get("data") or {}).get(HOLMES_KEY, ""))

        wait_for(lambda: "prometheus.monitoring" in holmes(), "the first ConfigMap")
        # A Service added: a reconcile that writes.
        apiserver.register_proxy("thanos", "thanos-query", 9090, backends(200))
        apiserver.create(prometheus("thanos-query", "thanos"))
        wait_for(lambda: "thanos-query.thanos" in holmes(), "the added Service")
        # An edit of a generated key: drift, restored.
        apiserver.modify(
            "configmaps",
            OUTPUT_NAMESPACE,
            OUTPUT_NAME,
            lambda o: o["data"].__setitem__(HOLMES_KEY, "toolsets: {}\n"),
        )
        wait_for(lambda: "prometheus.monitoring" in holmes(), "the restored key")
        # An API error on the next write: a failed reconcile, then a retry that succeeds.
        failing = apiserver.fail(500, verb="update", resource="configmaps", times=1)
        apiserver.register_proxy("metrics", "victoria", 9090, backends(200))
        apiserver.create(prometheus("victoria", "metrics"))
        wait_for(lambda: "victoria.metrics" in holmes(), "the write after the API error")
        assert failing.fired == 1
        # Configuration reloads through the file watch: an invalid edit (refused,
        # the running configuration stays), then a valid one (applied).
        metrics_url = f"http://{host}:{port}/metrics"
        config.write_text(CONFIG + "resync_interval: -1\n")
        wait_for(
            lambda: (
                'dynamic_toolset_config_reloads_total{result="failure"} 1.0' in scrape(metrics_url)
            ),
            "the refused reload",
        )
        config.write_text(CONFIG.replace("resync_interval: 2", "resync_interval: 3"))
        wait_for(
            lambda: "dynamic_toolset_config_generation 2.0" in scrape(metrics_url),
            "the applied reload",
        )

        # Each query must be valid and return data. Prometheus needs a few
        # scrapes after the last event for the rates.
        queries = panel_queries()

        def unanswered() -> list[str]:
            left = []
            for title, expr in queries:
                answer = prom.query(resolve(expr))
                assert answer.get("status") == "success", (title, expr, answer)
                if not answer["data"]["result"]:
                    left.append(f"{title}: {expr}")
            return left

        try:
            wait_for(lambda: not unanswered(), "every panel query to return data", timeout=30)
        except AssertionError:
            raise AssertionError(f"no data: {unanswered()}") from None
        # The values are those of the activity, not just present.
        errors = prom.query('sum(dynamic_toolset_detector_errors_total{detector="flaky"})')
        assert float(errors["data"]["result"][0]["value"][1]) >= 1
        drift = prom.query("dynamic_toolset_configmap_drift_detections_total")
        assert float(drift["data"]["result"][0]["value"][1]) >= 1
        failed = prom.query(
            'dynamic_toolset_configmap_update_errors_total{error_type="server_error"}'
        )
        assert float(failed["data"]["result"][0]["value"][1]) == 1
        health = prom.query(
            'sum by (reason) (dynamic_toolset_health_check_failures_total{detector="prometheus"})'
        )
        assert {r["metric"]["reason"] for r in health["data"]["result"]} == {"http_status"}
        plugins = prom.query("dynamic_toolset_plugin_info")
        assert {r["metric"]["distribution"] for r in plugins["data"]["result"]} >= {
            "dyntoolset",
            "dyntoolset-flaky",
        }
    finally:
        if server is not None:
            server.stop()
        run.stop()
