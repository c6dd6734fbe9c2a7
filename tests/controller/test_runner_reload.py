"""Reloads in a running controller (in process, against the emulator): the mounted file's
``..data`` swap, a broken edit that changes nothing but an error count while ``/ready``
stays 200, the ConfigMap source watched through the API, and the switches."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dyntoolset.controller.config_watch import MISSING, ConfigMapSourceWatch, digest
from dyntoolset.controller.runner import Runner, RunOptions
from dyntoolset.kube.config_source import ConfigMapRef
from dyntoolset.testing.apiserver import ApiServer
from tests.controller.test_config_watch import kubelet_layout, kubelet_update
from tests.controller.test_reload import BASE, CHANGED, config_configmap, grafana, tools
from tests.kube._support import FAST, fast_backoff, prometheus, wait_for
from tests.kube.conftest import NAME, NAMESPACE

PATIENCE = 60.0


def get(address: tuple[str, int], path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


class Running:
    """A Runner in a thread; its log records come from ``caplog``."""

    def __init__(self, runner: Runner, caplog: pytest.LogCaptureFixture) -> None:
        self.runner = runner
        self.caplog = caplog
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(runner.run()))
        self.thread.start()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [
            r.dyntoolset  # type: ignore[attr-defined]
            for r in list(self.caplog.records)
            if getattr(r, "dyntoolset", {}).get("event") == name
        ]

    def address(self, role: str = "probes") -> tuple[str, int]:
        record = wait_for(
            lambda: next((e for e in self.events("listening") if role in e.get("roles", ())), None),
            PATIENCE,
            "the probes",
        )
        host, port = record["address"].rsplit(":", 1)
        return host, int(port)

    def stop(self) -> int:
        self.runner.request_stop()
        self.thread.join(PATIENCE)
        assert not self.thread.is_alive()
        (code,) = self.result
        return code


@pytest.fixture
def run(apiserver: ApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Iterator[Any]:
    started: list[Running] = []

    def start(**options: Any) -> Running:
        runner = Runner(
            RunOptions(
                kubeconfig=str(apiserver.write_kubeconfig(tmp_path / "kubeconfig")),
                listen=("127.0.0.1", 0),
                metrics_listen=("127.0.0.1", 0),
                debounce=0.02,
                **options,
            ),
            inside=False,
        )
        started.append(Running(runner, caplog))
        return started[-1]

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()


def configmap(apiserver: ApiServer) -> dict[str, Any] | None:
    return apiserver.get("configmaps", NAMESPACE, NAME)


def test_a_mounted_configmap_swap_reloads_and_a_broken_edit_changes_only_an_error_count(
    apiserver: ApiServer, tmp_path: Path, run: Any
) -> None:
    apiserver.seed(prometheus(), grafana())
    mount = tmp_path / "mount"
    mount.mkdir()
    kubelet_layout(mount, BASE, "10_00_00.1")
    running = run(config_file=str(mount / "config.yaml"), config_poll_interval=0.05)
    wait_for(
        lambda: tools(configmap(apiserver)) == {"prometheus.monitoring", "grafana.monitoring"},
        PATIENCE,
        "the first write",
    )
    probes = running.address()
    assert running.runner.reloader is not None
    assert running.events("config_watch")[0]["watching"] == str(mount / "config.yaml")

    kubelet_update(mount, "detectors: {prometheus: {priority: many}}\n", "10_01_00.2")
    (failed,) = wait_for(lambda: running.events("config_reload_failed"), PATIENCE, "failure")
    assert failed["trigger"] == "file"
    assert failed["problems"] == ["$.detectors.prometheus.priority: expected int, got 'many'"]
    status, body = get(probes, "/ready")
    assert status == 200, body
    assert tools(configmap(apiserver)) == {"prometheus.monitoring", "grafana.monitoring"}
    assert running.runner.reloader.generation == 1

    kubelet_update(mount, CHANGED, "10_02_00.3")
    wait_for(
        lambda: tools(configmap(apiserver)) == {"prometheus.monitoring"}, PATIENCE, "the reload"
    )
    assert running.runner.reloader.generation == 2
    assert len(running.events("config_reload_failed")) == 1  # the broken edit, reported once
    metrics = get(running.address("metrics"), "/metrics")[1]
    assert 'dynamic_toolset_config_reloads_total{result="failure"} 1.0' in metrics
    assert 'dynamic_toolset_config_reloads_total{result="success"} 1.0' in metrics
    assert "dynamic_toolset_config_generation 2.0" in metrics
    assert get(probes, "/ready")[0] == 200
    assert running.stop() == 0
    assert not any(t.name == "dyntoolset-watch-config-file" for t in threading.enumerate())


def test_a_deleted_file_keeps_the_running_configuration(
    apiserver: ApiServer, tmp_path: Path, run: Any
) -> None:
    apiserver.seed(prometheus(), grafana())
    path = tmp_path / "config.yaml"
    path.write_text(BASE)
    running = run(config_file=str(path), config_poll_interval=0.05)
    wait_for(lambda: len(tools(configmap(apiserver))) == 2, PATIENCE, "the first write")
    path.unlink()
    (missing,) = wait_for(lambda: running.events("config_file_missing"), PATIENCE, "missing")
    assert missing["path"] == str(path)
    (failed,) = wait_for(lambda: running.events("config_reload_failed"), PATIENCE, "failure")
    assert failed["problems"] == ["$: no such file (leave the path out to use the defaults)"]
    assert get(running.address(), "/ready")[0] == 200
    path.write_text(CHANGED)
    wait_for(lambda: len(tools(configmap(apiserver))) == 1, PATIENCE, "the reload")
    assert running.stop() == 0


def test_the_config_configmap_is_watched_through_the_api(
    apiserver: ApiServer, tmp_path: Path, run: Any
) -> None:
    apiserver.seed(prometheus(), grafana())
    apiserver.create(config_configmap(BASE))
    running = run(config_configmap=f"{NAMESPACE}/dyntoolset-config")
    wait_for(lambda: len(tools(configmap(apiserver))) == 2, PATIENCE, "the first write")
    apiserver.modify(
        "configmaps",
        NAMESPACE,
        "dyntoolset-config",
        lambda o: o["data"].update({"config.yaml": CHANGED}),
    )
    wait_for(lambda: tools(configmap(apiserver)) == {"prometheus.monitoring"}, PATIENCE, "reload")
    (reloaded,) = running.events("config_reloaded")
    assert reloaded["trigger"] == "configmap"
    assert reloaded["source"] == f"configmap {NAMESPACE}/dyntoolset-config:config.yaml"
    assert running.stop() == 0


def test_with_the_watch_off_nothing_is_watched_but_the_reloader_exists(
    apiserver: ApiServer, tmp_path: Path, run: Any
) -> None:
    apiserver.seed(prometheus())
    path = tmp_path / "config.yaml"
    path.write_text(BASE)
    running = run(config_file=str(path), config_watch=False)
    wait_for(lambda: configmap(apiserver), PATIENCE, "the first write")
    assert running.events("config_watch") == [{"event": "config_watch", "watching": None}]
    assert not any(t.name == "dyntoolset-watch-config-file" for t in threading.enumerate())
    path.write_text(CHANGED)
    assert running.runner.reloader is not None
    assert running.runner.reloader.reload("api").status == "success"
    assert running.stop() == 0


def test_a_single_run_builds_no_reloader_and_watches_nothing(
    apiserver: ApiServer, tmp_path: Path, run: Any
) -> None:
    apiserver.seed(prometheus())
    path = tmp_path / "config.yaml"
    path.write_text(BASE)
    running = run(config_file=str(path), once=True)
    running.thread.join(PATIENCE)
    assert running.result == [0]
    assert running.runner.reloader is None
    assert running.events("config_watch") == []


def test_the_configmap_watch_calls_back_on_data_changes_and_deletion_only(
    apiserver: ApiServer,
) -> None:
    ref = ConfigMapRef(NAMESPACE, "dyntoolset-config")
    apiserver.create(config_configmap(BASE))
    calls: list[int] = []
    watch = ConfigMapSourceWatch(
        apiserver.api_client,
        ref,
        lambda: calls.append(1),
        baseline=digest(BASE),
        timeouts=FAST,
        backoff=fast_backoff,
    )
    watch.start()
    try:
        wait_for(lambda: watch.watch.reflector is not None and watch.watch.reflector.lists)
        apiserver.modify(
            "configmaps", NAMESPACE, ref.name, lambda o: o["metadata"].update(labels={"a": "b"})
        )
        apiserver.modify(
            "configmaps", NAMESPACE, ref.name, lambda o: o["data"].update({"config.yaml": CHANGED})
        )
        wait_for(lambda: watch.changes == 1)  # the label edit, seen first, was no change
        apiserver.delete("configmaps", NAMESPACE, ref.name)
        wait_for(lambda: watch.changes == 2)
    finally:
        watch.stop()
    assert len(calls) == 2


def test_a_configmap_absent_at_start_is_a_change_when_it_appears(apiserver: ApiServer) -> None:
    ref = ConfigMapRef(NAMESPACE, "dyntoolset-config")
    calls: list[int] = []
    watch = ConfigMapSourceWatch(
        apiserver.api_client,
        ref,
        lambda: calls.append(1),
        baseline=MISSING,
        timeouts=FAST,
        backoff=fast_backoff,
    )
    watch.start()
    try:
        wait_for(lambda: watch.watch.reflector is not None and watch.watch.reflector.lists)
        assert watch.changes == 0
        apiserver.create(config_configmap(BASE))
        wait_for(lambda: watch.changes == 1)
    finally:
        watch.stop()
    assert calls == [1]
