"""Every declared metric family is documented and moved by real reconciles.

The reconciler runs against the emulator through the real client, with a real
health checker (its resolver, the project's own boundary, is the fake) and a
detector that raises, so every path that updates a metric is taken.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from dyntoolset.config import GlobalHealthChecks, load_config
from dyntoolset.controller.reconciler import RESULTS
from dyntoolset.discovery import SKIP_REASONS
from dyntoolset.health import REASONS as HEALTH_REASONS
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
    "dynamic_toolset_cache_services",
    "dynamic_toolset_plugin_load_errors",
    "dynamic_toolset_config_reloads_total",
    "dynamic_toolset_config_generation",
    "dynamic_toolset_build_info",
    "dynamic_toolset_plugin_info",
}

#: Label values no label may hold beyond these: small fixed sets, never a
#: Service name, a URL or an error message. Detector names and namespaces are
#: added per test (they come from the configuration and the cluster).
ALLOWED_LABEL_VALUES: dict[str, set[str]] = {
    "result": set(RESULTS) | set(HEALTH_REASONS),
    "reason": set(SKIP_REASONS) | set(HEALTH_REASONS),
    # A detector raised; or how a reconcile failed (kube.errors, the reconciler's own).
    "error_type": {
        "exception",
        "server_error",
        "bad_request",
        "unauthorized",
        "forbidden",
        "not_found",
        "timeout",
        "conflict",
        "gone",
        "too_large",
        "invalid",
        "too_many_requests",
        "invalid_configmap",
        "render",
        "internal",
    },
}

#: Updated by the HTTP API's middlewares, not by a cycle; moved by
#: tests/controller/test_api_server.py (requests) and tests/controller/test_api_auth.py
#: (every failure reason).
UPDATED_BY_THE_API = {
    "dynamic_toolset_api_requests_total",
    "dynamic_toolset_api_auth_failures_total",
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
    # The table holds no unknown name: tests/test_observability_consistency.py.


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
    # A failed reconcile is no success: the timestamp stays at its "never" value.
    assert metrics.value("dynamic_toolset_configmap_last_success_timestamp_seconds") == 0
    failing.remove()
    before = time.time()
    # Every health check fails (NXDOMAIN or the deadline); include_unhealthy
    # keeps the services in the documents, so tools_count moves too.
    first = stack.reconciler.reconcile_now()
    assert first.result == "success" and first.wrote
    assert metrics.value("dynamic_toolset_configmap_last_success_timestamp_seconds") >= before
    apiserver.modify("configmaps", NAMESPACE, NAME, lambda o: o["data"].pop(HOLMES, None))
    assert stack.reconciler.reconcile_now().wrote

    still = [
        name
        for name in METRIC_NAMES
        if name not in UPDATED_BY_THE_RUNNER | UPDATED_BY_THE_API and not moved(metrics, name)
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
    unexpected = unexpected_label_values(
        metrics,
        {
            "detector": {d.name for d in engine.detectors},
            "namespace": {"monitoring", "slow", "shop", OTHER_NAMESPACE},
        },
    )
    assert unexpected == []


def unexpected_label_values(metrics: Metrics, more: dict[str, set[str]]) -> list[str]:
    """Every ``family{label=value}`` whose value is outside the allowed sets.

    A label that has no allowed set at all is reported too: a new label must
    say here what it may hold.
    """
    allowed = {k: v | more.get(k, set()) for k, v in ALLOWED_LABEL_VALUES.items()}
    allowed.update({k: v for k, v in more.items() if k not in allowed})
    found = []
    for family in metrics.registry.collect():
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label == "le":  # histogram buckets
                    continue
                if value not in allowed.get(label, set()):
                    found.append(f"{sample.name}{{{label}={value!r}}}")
    return found


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


def test_the_last_success_timestamp_moves_on_unchanged_reconciles(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    metrics = Metrics()
    apiserver.seed(prometheus())
    stack = make_stack(start=False, metrics=metrics)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    assert stack.reconciler.reconcile_now().result == "success"
    written = metrics.value("dynamic_toolset_configmap_last_success_timestamp_seconds")
    assert written > 0
    time.sleep(0.01)  # the clock must be able to move between the two reconciles
    unchanged = stack.reconciler.reconcile_now()
    assert unchanged.result == "unchanged"
    later = metrics.value("dynamic_toolset_configmap_last_success_timestamp_seconds")
    assert later == unchanged.finished_at.timestamp()
    assert later > written


def test_build_and_plugin_info_are_one_series_each() -> None:
    metrics = Metrics()
    metrics.set_build_info("1.2.3", "3.11.9")
    metrics.set_build_info("1.2.4", "3.11.9")  # replaces, never adds
    metrics.set_plugin_distributions([("dyntoolset", "1.2.4"), ("dyntoolset-loki", "0.1.0")])
    metrics.set_plugin_distributions([("dyntoolset", "1.2.4")])
    series = {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for f in metrics.registry.collect()
        if f.name in ("dynamic_toolset_build_info", "dynamic_toolset_plugin_info")
        for s in f.samples
    }
    assert series == {
        ("dynamic_toolset_build_info", (("python", "3.11.9"), ("version", "1.2.4")), 1.0),
        (
            "dynamic_toolset_plugin_info",
            (("distribution", "dyntoolset"), ("version", "1.2.4")),
            1.0,
        ),
    }
