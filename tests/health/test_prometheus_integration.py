"""Real Prometheus and Alertmanager on loopback, checked through both modes.

Needs the Debian packages (``.ci/run`` installs them)::

    apt-get install -y --no-install-recommends prometheus prometheus-alertmanager

Without the binaries a plain ``pytest`` skips these tests with that command
as the reason; under ``nox`` and CI (``pytest --require-integration``) a
missing binary fails them: the integration is part of the definition of done.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import attrs
import pytest

from dyntoolset.config import Config, load_config_text
from dyntoolset.discovery import create_detectors, discover
from dyntoolset.health import HealthChecker, check_offline, select_healthy
from dyntoolset.kube.proxy import health_transport
from dyntoolset.model import Discovered, Port, Service
from dyntoolset.plugins import load_plugins
from dyntoolset.testing.apiserver import ApiServer
from tests.health._servers import FakeResolver

pytestmark = pytest.mark.integration

APT = "apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"


@attrs.frozen
class Backends:
    prometheus_port: int
    alertmanager_port: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install the Debian package {package!r} ({APT})")
    return path


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if process.poll() is not None:
            pytest.fail(
                f"{url}: process exited with {process.returncode}:\n{log.read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # test harness only
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} not ready after {seconds}s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    prometheus = _binary("prometheus", "prometheus")
    alertmanager = _binary("prometheus-alertmanager", "prometheus-alertmanager")
    root = tmp_path_factory.mktemp("backends")
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    (root / "alertmanager.yml").write_text(
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"
    )
    p_port, a_port = _free_port(), _free_port()
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    try:
        p_log = (root / "prometheus.log").open("wb")
        logs.append(p_log)
        processes.append(
            subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={root / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{p_port}",
                ],
                stdout=p_log,
                stderr=subprocess.STDOUT,
            )
        )
        a_log = (root / "alertmanager.log").open("wb")
        logs.append(a_log)
        processes.append(
            subprocess.Popen(
                [
                    alertmanager,
                    f"--config.file={root / 'alertmanager.yml'}",
                    f"--storage.path={root / 'am'}",
                    f"--web.listen-address=127.0.0.1:{a_port}",
                    # No gossip cluster: it would listen on 0.0.0.0:9094.
                    "--cluster.listen-address=",
                ],
                stdout=a_log,
                stderr=subprocess.STDOUT,
            )
        )
        _wait_ready(f"http://127.0.0.1:{p_port}/-/ready", processes[0], root / "prometheus.log")
        _wait_ready(f"http://127.0.0.1:{a_port}/-/ready", processes[1], root / "alertmanager.log")
        yield Backends(p_port, a_port)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def _services(b: Backends) -> list[Service]:
    # The Services' ports are the real listening ports, so the endpoints the
    # detectors build point at the processes once the name resolves to loopback.
    return [
        Service(
            "prometheus",
            "monitoring",
            labels={"app.kubernetes.io/name": "prometheus"},
            ports=(Port(b.prometheus_port, "web"),),
            cluster_ip="10.0.0.1",
        ),
        Service(
            "alertmanager",
            "monitoring",
            annotations={
                "kubernaut.io/toolset": "enabled",
                "kubernaut.io/toolset-type": "alertmanager",
            },
            ports=(Port(b.alertmanager_port, "http"),),
            cluster_ip="10.0.0.2",
        ),
    ]


def _discover(b: Backends, config_text: str) -> tuple[Config, list[Discovered]]:
    plugins = load_plugins()
    config = load_config_text(config_text, "test", plugins)
    found = discover(_services(b), create_detectors(config, plugins)).discovered
    assert {(d.detector, d.health_path) for d in found} == {
        ("prometheus", "/-/healthy"),
        ("custom", "/"),
    }
    return config, found


CONFIG = """
health_checks:
  allowed_networks: ["127.0.0.0/8"]
  mode: {mode}
detectors:
  prometheus:
    health_check: {{timeout: 2s, retries: 1}}
"""

RESOLVE = {
    "prometheus.monitoring.svc.cluster.local": ["127.0.0.1"],
    "alertmanager.monitoring.svc.cluster.local": ["127.0.0.1"],
}


def test_direct_mode_with_default_paths(backends: Backends) -> None:
    config, found = _discover(backends, CONFIG.format(mode="direct"))
    checked = check_offline(found, config, resolver=FakeResolver(RESOLVE))
    assert {d.key: (d.health.reason if d.health else None) for d in checked} == {
        "monitoring/prometheus": "ok",
        "monitoring/alertmanager": "ok",
    }
    assert select_healthy(checked) == checked


def test_direct_mode_refuses_loopback_without_the_allow_list(backends: Backends) -> None:
    config, found = _discover(backends, "health_checks: {mode: direct}")
    checked = check_offline(found, config, resolver=FakeResolver(RESOLVE))
    assert {d.health.reason for d in checked if d.health} == {"blocked"}
    assert select_healthy(checked) == []


def test_apiserver_proxy_mode_with_default_paths(backends: Backends, apiserver: ApiServer) -> None:
    config, found = _discover(backends, CONFIG.format(mode="apiserver-proxy"))
    for svc in _services(backends):
        port = svc.ports[0].port
        apiserver.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": svc.name, "namespace": svc.namespace},
                "spec": {"ports": [{"name": svc.ports[0].name, "port": port}]},
            }
        )
        apiserver.register_proxy(svc.namespace, svc.name, port, f"http://127.0.0.1:{port}")
    resolver = FakeResolver()
    checker = HealthChecker.from_config(
        config,
        transport=health_transport(config.health_checks, apiserver.api_client),
        resolver=resolver,
    )
    checked = checker.check(found)
    assert {d.key: (d.health.reason if d.health else None) for d in checked} == {
        "monitoring/prometheus": "ok",
        "monitoring/alertmanager": "ok",
    }
    paths = sorted(r.path for r in apiserver.requests if "/proxy" in r.path)
    assert paths == [
        f"/api/v1/namespaces/monitoring/services/alertmanager:{backends.alertmanager_port}/proxy/",
        f"/api/v1/namespaces/monitoring/services/prometheus:{backends.prometheus_port}"
        "/proxy/-/healthy",
    ]
    assert resolver.calls == []


def test_a_missing_binary_fails_with_the_install_hint() -> None:
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y"):
        _binary("dyntoolset-no-such-binary", "prometheus")
