"""Every declared metric family is documented and moved by real reconciles.

The reconciler runs against the emulator through the real client, with a real
health checker (its resolver, the project's own boundary, is the fake) and a
detector that raises, so every path that updates a metric is taken.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from dyntoolset.config import GlobalHealthChecks, load_config
from dyntoolset.health import HealthChecker
from dyntoolset.metrics import METRIC_NAMES, OTHER_NAMESPACE, Metrics
from dyntoolset.pipeline import Engine
from dyntoolset.testing import make_plugin_set
from dyntoolset.testing.apiserver import ApiServer
from tests.helpers import BrokenDetector
from tests.kube._support import PATIENCE, prometheus, service
from tests.kube.conftest import NAME, NAMESPACE, StackFactory

DOCS = Path(__file__).resolve().parents[2] / "docs" / "observability.md"
HOLMES = "custom_toolset.yaml"

#: Updated by the runner (leader election, the cache it owns, the plugins it
#: loads), not by a cycle; tests/controller/test_run.py reads them from /metrics.
#: The reload metrics are moved by configuration reloads:
#: tests/controller/test_reload.py::test_metrics_count_every_result.
UPDATED_BY_THE_RUNNER = {
    "dynamic_toolset_leader_election_is_leader",
    "dynamic_toolset_cache_synced",
    "dynamic_toolset_plugin_load_errors",
    "dynamic_toolset_config_reloads_total",
    "dynamic_toolset_config_generation",
}

CONFIG = """
health_checks: {include_unhealthy: true}
output: {name: kubernaut-toolset-config, namespace: kubernaut-system}
"""


class SlowResolver:
    """Blocks on names under ``slow`` until released; every other name is NXDOMAIN."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, host: str) -> Sequence[str]:
        if ".slow." in host:
            self.release.wait(PATIENCE)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture
def resolver() -> Iterator[SlowResolver]:
    slow = SlowResolver()
    yield slow
    slow.release.set()


def moved(metrics: Metrics, family_name: str) -> bool:
    """Whether a family holds a sample that shows an update (non-zero count or value)."""
    for family in metrics.registry.collect():
        exposed = family.name + "_total" if family.type == "counter" else family.name
        if exposed != family_name:
            continue
        return any(
            s.value != 0
            for s in family.samples
            if not s.name.endswith(("_created", "_bucket", "_sum"))
        )
    raise AssertionError(f"{family_name} is not registered")


def test_every_exported_family_is_in_the_docs() -> None:
    text = DOCS.read_text()
    exported = set()
    for family in Metrics().registry.collect():
        exported.add(family.name + "_total" if family.type == "counter" else family.name)
    assert exported == set(METRIC_NAMES)
    documented = set(re.findall(r"`(dynamic_toolset_[a-z_]+)`", text))
    assert exported - documented == set(), "metrics missing from docs/observability.md"
    assert documented - exported == set(), "docs/observability.md names unknown metrics"


def test_every_family_is_updated_by_real_reconciles(
    apiserver: ApiServer, make_stack: StackFactory, tmp_path: Path, resolver: SlowResolver
) -> None:
    plugins = make_plugin_set(BrokenDetector)
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    engine = Engine(load_config(path, plugins), plugins)
    metrics = Metrics()
    health = HealthChecker(
        GlobalHealthChecks(mode="direct", deadline=0.5),  # type: ignore[arg-type]
        resolver=resolver,
        metrics=metrics,
    )
    apiserver.seed(prometheus(), prometheus("prom", "slow"), service("web", "shop"))
    failing = apiserver.fail(500, verb="create", resource="configmaps")
    stack = make_stack(start=False, engine=engine, metrics=metrics, health=health)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)

    assert stack.reconciler.reconcile_now().result == "error"
    failing.remove()
    # Every health check fails (NXDOMAIN or the deadline); include_unhealthy
    # keeps the services in the documents, so tools_count moves too.
    first = stack.reconciler.reconcile_now()
    assert first.result == "success" and first.wrote
    apiserver.modify("configmaps", NAMESPACE, NAME, lambda o: o["data"].pop(HOLMES, None))
    assert stack.reconciler.reconcile_now().wrote

    still = [
        name
        for name in METRIC_NAMES
        if name not in UPDATED_BY_THE_RUNNER and not moved(metrics, name)
    ]
    assert still == []
    assert (
        metrics.value(
            "dynamic_toolset_detector_errors_total",
            {"detector": "broken", "error_type": "exception"},
        )
        == 3 * 3
    )  # three Services, three cycles
    assert metrics.value("dynamic_toolset_discovery_errors_total") == 9  # the V1 alias
    assert metrics.value("dynamic_toolset_detector_services_found", {"detector": "prometheus"}) == 2
    assert metrics.value("dynamic_toolset_discovery_services_total", {"namespace": "slow"}) == 3
    assert metrics.value("dynamic_toolset_services_discovered_total") == 6
    assert metrics.value("dynamic_toolset_discovery_skipped_total", {"reason": "no_match"}) == 3
    assert (
        metrics.value("dynamic_toolset_detector_duration_seconds_count", {"detector": "broken"})
        == 3
    )


def test_namespaces_beyond_the_limit_count_as_other(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    metrics = Metrics(namespace_label_limit=1)
    apiserver.seed(prometheus("a", "ns-a"), prometheus("b", "ns-b"), prometheus("c", "ns-c"))
    stack = make_stack(start=False, metrics=metrics)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    stack.reconciler.reconcile_now()
    stack.reconciler.reconcile_now()
    # Sorted namespaces: ns-a takes the one slot, and keeps it on the next cycle.
    assert metrics.value("dynamic_toolset_discovery_services_total", {"namespace": "ns-a"}) == 2
    assert (
        metrics.value("dynamic_toolset_discovery_services_total", {"namespace": OTHER_NAMESPACE})
        == 4
    )
    labels = {
        s.labels["namespace"]
        for f in metrics.registry.collect()
        if f.name == "dynamic_toolset_discovery_services"
        for s in f.samples
    }
    assert labels == {"ns-a", OTHER_NAMESPACE}


def test_a_zero_limit_turns_the_namespace_label_off() -> None:
    metrics = Metrics(namespace_label_limit=0)
    assert metrics.namespace_label("anything") == OTHER_NAMESPACE


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="namespace_label_limit must be 0 or more, not -1"):
        Metrics(namespace_label_limit=-1)
