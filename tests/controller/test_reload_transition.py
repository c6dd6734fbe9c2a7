"""AC-039-03, graceful transition: a reload that disables one detector, re-prioritises
another and changes health settings never publishes a ConfigMap missing a still-valid tool,
nor an empty toolset, and the health checker's state carries over.

Real parts throughout: the emulator with a real ConfigMapStore (every write is in its
request log), a real HealthChecker probing real HTTP servers on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dyntoolset.config import Config
from dyntoolset.controller.reconciler import Reconciler
from dyntoolset.controller.reload import Reloader, file_reader
from dyntoolset.health import HealthChecker
from dyntoolset.kube.configmaps import ConfigMapStore
from dyntoolset.kube.services import ServiceCache
from dyntoolset.metrics import Metrics
from dyntoolset.pipeline import Engine
from dyntoolset.testing.apiserver import ApiServer
from tests.health._servers import Backend, FakeResolver, status
from tests.kube._support import FAST, PATIENCE, fast_backoff, service
from tests.kube.conftest import NAME, NAMESPACE

HEALTH = """\
health_checks:
  mode: direct
  allowed_networks: [127.0.0.0/8]
  cache_ttl: 0.001
  failure_threshold: {threshold}
"""

BEFORE = (
    HEALTH.format(threshold=2)
    + """\
detectors:
  prometheus: {priority: 1, health_check: {timeout: 5, retries: 0}}
  grafana: {priority: 2, health_check: {timeout: 5, retries: 0}}
"""
)

AFTER = (
    HEALTH.format(threshold=3)
    + """\
detectors:
  prometheus: {priority: 50, health_check: {timeout: 5, retries: 0}}
  grafana: {enabled: false}
"""
)


@pytest.fixture
def backends() -> Iterator[dict[str, Backend]]:
    started = {name: Backend() for name in ("prom-a", "prom-b", "prom-c", "grafana")}
    yield started
    for backend in started.values():
        backend.stop()


def kubernaut_tools(configmap: dict[str, Any]) -> list[str]:
    return sorted(t["name"] for t in json.loads(configmap["data"]["toolset.json"])["tools"])


def test_a_reload_never_drops_a_valid_tool_and_health_state_carries_over(
    apiserver: ApiServer, tmp_path: Path, backends: dict[str, Backend]
) -> None:
    for name, backend in backends.items():
        kind = "grafana" if name == "grafana" else "prometheus"
        apiserver.create(
            service(name, "monitoring", labels={"app.kubernetes.io/name": kind}, port=backend.port)
        )
    resolver = FakeResolver(
        {f"{name}.monitoring.svc.cluster.local": ["127.0.0.1"] for name in backends}
    )
    metrics = Metrics()

    def checker(config: Config) -> HealthChecker:
        return HealthChecker.from_config(config, resolver=resolver, metrics=metrics)

    path = tmp_path / "config.yaml"
    path.write_text(BEFORE)
    engine = Engine.load(path)
    cache = ServiceCache(apiserver.api_client, timeouts=FAST, backoff=fast_backoff)
    store = ConfigMapStore(apiserver.api_client, NAMESPACE, NAME, timeouts=FAST)
    first_checker = checker(engine.config)
    reconciler = Reconciler(engine, cache, store, health=first_checker, metrics=metrics)
    reloader = Reloader(reconciler, file_reader(str(path)), metrics=metrics, health=checker)
    cache.start()
    try:
        assert cache.wait_synced(PATIENCE)
        apiserver.clear_requests()

        def reconcile() -> str:
            outcome = reconciler.reconcile_now()
            assert outcome.result in ("success", "unchanged"), outcome.error
            return outcome.result

        assert reconcile() == "success"  # all four answer
        backends["prom-b"].script = status(500)
        assert reconcile() == "unchanged"  # prom-b: failure 1 of 2, kept
        assert reconcile() == "success"  # failure 2 of 2: dropped
        backends["prom-c"].script = status(500)
        assert reconcile() == "unchanged"  # prom-c: failure 1 of 2, kept

        path.write_text(AFTER)
        report = reloader.reload("api")
        assert report.changes == (
            "detector grafana disabled",
            "detector prometheus priority 1 -> 50",
            "setting health_checks.failure_threshold changed: 2 -> 3",
        )
        assert reconciler.health is not first_checker
        assert isinstance(reconciler.health, HealthChecker)
        assert reconciler.health.options.failure_threshold == 3

        # prom-c fails a second time: with the inherited count that is 2 of 3, kept
        # (a fresh checker would see a new service without a success, and drop it);
        # prom-b, unhealthy, stays out; Grafana goes.
        assert reconcile() == "success"
        backends["prom-b"].script = status(200)
        backends["prom-c"].script = status(200)
        assert reconcile() == "success"  # prom-b recovered: one success brings it back
    finally:
        cache.stop()
        store.close()

    written = [w.body for w in apiserver.writes("configmaps", namespace=NAMESPACE)]
    assert [kubernaut_tools(body) for body in written] == [
        ["grafana.monitoring", "prom-a.monitoring", "prom-b.monitoring", "prom-c.monitoring"],
        ["grafana.monitoring", "prom-a.monitoring", "prom-c.monitoring"],
        ["prom-a.monitoring", "prom-c.monitoring"],  # the reload: only Grafana left
        ["prom-a.monitoring", "prom-b.monitoring", "prom-c.monitoring"],
    ]
    for body in written:
        holmes = yaml.safe_load(body["data"]["custom_toolset.yaml"])
        assert holmes["toolsets"], "an empty HolmesGPT toolset was published"
