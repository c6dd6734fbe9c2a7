"""The reconciler against the emulator through the real client: the writes test plan."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from dyntoolset.config import load_config
from dyntoolset.configmap import KEY_HASHES
from dyntoolset.controller.reconciler import Reconciler
from dyntoolset.kube.errors import Backoff
from dyntoolset.kube.services import ServiceCache
from dyntoolset.metrics import Metrics
from dyntoolset.model import OVERRIDES_KEY
from dyntoolset.pipeline import Engine
from dyntoolset.testing import make_plugin_set
from dyntoolset.testing.apiserver import ApiServer
from tests.helpers import ListRenderer
from tests.kube._support import FAST, PATIENCE, Recorder, prometheus, service, wait_for
from tests.kube.conftest import CONFIG, NAME, NAMESPACE, GatedHealth, StackFactory

HOLMES = "custom_toolset.yaml"
OVERRIDES = "toolsets:\n  prometheus/metrics:\n    enabled: false  # operator's, byte for byte\n"


def operator_configmap(data: dict[str, str], **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "annotations": annotations},
        "data": data,
    }


def metric(stack: Any, name: str, **labels: str) -> float:
    return float(stack.metrics.value(f"dynamic_toolset_{name}", labels or None))


def test_creates_the_configmap_from_the_synced_cache(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus(), service("web", "shop"))
    stack = make_stack(settle=True)  # one reconcile, for every first notification
    wait_for(stack.converged, what="the ConfigMap")
    # The write is visible before the outcome is published: wait for the outcome.
    wait_for(lambda: stack.reconciler.last_outcome and stack.reconciler.last_outcome.wrote)
    stored = stack.configmap()
    assert stored is not None
    assert "kube-prometheus" in stored["data"][HOLMES] or "prometheus" in stored["data"][HOLMES]
    assert stack.writes() == 1
    outcome = stack.reconciler.last_outcome
    assert outcome is not None and outcome.result == "success" and outcome.wrote
    assert metric(stack, "configmap_reconciliations_total", result="success") == 1
    assert metric(stack, "configmap_updates_total") == 1
    assert stack.metrics.value("dynamic_toolset_configmap_reconcile_duration_seconds_count") >= 1
    assert stack.reconciler.ready


def test_a_first_list_failure_writes_nothing(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    failing = apiserver.fail(500, verb="list", resource="services")
    stack = make_stack()
    wait_for(lambda: failing.fired >= 2)
    outcome = stack.reconciler.reconcile_now()
    assert outcome.result == "skipped_not_synced" and outcome.cycle is None
    assert stack.writes() == 0 and not stack.reconciler.ready
    failing.remove()
    wait_for(stack.converged, what="the first write once synced")
    assert stack.writes() == 1


def test_a_conflict_rereads_remerges_and_keeps_the_operators_edit(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    apiserver.create(operator_configmap({"notes.txt": "ours\n"}))
    edited = threading.Event()

    def operator_edits_first(info: Any) -> bool:
        # Between the reconciler's read and its write, the operator edits the ConfigMap:
        # the write carries a stale resourceVersion and the server answers a real 409.
        if info.method == "PUT" and not edited.is_set():
            edited.set()
            apiserver.modify(
                "configmaps",
                NAMESPACE,
                NAME,
                lambda o: o["data"].update({OVERRIDES_KEY: OVERRIDES, "extra": "theirs"}),
            )
        return False

    apiserver.delay(0, resource="configmaps", when=operator_edits_first)
    stack = make_stack(start=False)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    outcome = stack.reconciler.reconcile_now()
    assert outcome.result == "success" and outcome.attempts == 2, outcome.error
    stored = stack.configmap()
    assert stored is not None
    assert stored["data"][OVERRIDES_KEY] == OVERRIDES
    assert stored["data"]["extra"] == "theirs" and stored["data"]["notes.txt"] == "ours\n"
    assert "enabled: false" in stored["data"][HOLMES]  # the overrides were applied on re-merge
    assert stack.converged()
    assert [r.status for r in apiserver.find_requests(verb="update", resource="configmaps")] == [
        409,
        200,
    ]


def test_conflicts_forever_are_bounded_then_backed_off(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    apiserver.create(operator_configmap({}))
    apiserver.fail(409, reason="Conflict", verb="update", resource="configmaps")
    stack = make_stack(start=False, conflict_retries=3, backoff=Backoff(0.8, 30.0))
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    outcome = stack.reconciler.reconcile_now()
    assert outcome.result == "error" and outcome.error_type == "conflict" and outcome.temporary
    assert outcome.attempts == 4
    assert apiserver.count(verb="update", resource="configmaps") == 4
    assert metric(stack, "configmap_update_errors_total", error_type="conflict") == 1
    stack.reconciler.start()
    time.sleep(1.0)  # time passing, not an assertion: the retry waits for the backoff
    # Rounds of four start >= 0.4 s and then >= 1.2 s after the first: two more at most,
    # even with the sleep overrunning on a loaded machine. A hot loop would make hundreds.
    assert apiserver.count(verb="update", resource="configmaps") <= 12


def test_a_deleted_configmap_is_recreated_in_one_reconcile(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    stack = make_stack()
    wait_for(stack.converged)
    # Let the echo of our own create pass first: it must not be what repairs the deletion.
    written = stack.configmap()["metadata"]["resourceVersion"]  # type: ignore[index]
    reflector = stack.watch.reflector
    assert reflector is not None
    wait_for(lambda: reflector.resource_version == written, what="the echo of the create")
    time.sleep(0.3)  # time passing: whatever the echo might have triggered is done
    before = stack.reconciler.reconciles
    apiserver.delete("configmaps", NAMESPACE, NAME)
    wait_for(stack.converged, what="the recreated ConfigMap")
    assert [w.verb for w in stack.apiserver.writes("configmaps")] == ["create", "create"]
    assert stack.reconciler.reconciles - before <= 2  # the deletion's, not a resync's


def test_a_create_race_takes_the_update_path(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    raced = threading.Event()

    def another_writer_creates_first(info: Any) -> bool:
        if info.verb == "create" and not raced.is_set():
            raced.set()
            apiserver.create(operator_configmap({OVERRIDES_KEY: OVERRIDES}))
        return False

    apiserver.delay(0, resource="configmaps", when=another_writer_creates_first)
    stack = make_stack(start=False)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    outcome = stack.reconciler.reconcile_now()
    assert outcome.result == "success" and outcome.attempts == 2
    assert [
        (r.verb, r.status)
        for r in apiserver.find_requests(resource="configmaps")
        if r.verb in ("create", "update")
    ] == [("create", 409), ("update", 200)]
    stored = stack.configmap()
    assert stored is not None and stored["data"][OVERRIDES_KEY] == OVERRIDES
    assert stack.converged()


def test_drift_is_restored_and_counted_overrides_untouched(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    apiserver.create(operator_configmap({OVERRIDES_KEY: OVERRIDES}))
    stack = make_stack()
    wait_for(stack.converged)
    generated = stack.configmap()["data"][HOLMES]  # type: ignore[index]
    apiserver.modify("configmaps", NAMESPACE, NAME, lambda o: o["data"].update({HOLMES: "hand\n"}))
    wait_for(lambda: metric(stack, "configmap_drift_detected_total") == 1, what="the drift")
    wait_for(stack.converged, what="the restored key")
    stored = stack.configmap()
    assert stored is not None
    assert stored["data"][HOLMES] == generated and stored["data"][OVERRIDES_KEY] == OVERRIDES
    assert metric(stack, "configmap_drift_detections_total") == 1


def test_the_outcome_names_the_drifted_keys(apiserver: ApiServer, make_stack: StackFactory) -> None:
    apiserver.seed(prometheus())
    stack = make_stack(start=False)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    assert stack.reconciler.reconcile_now().wrote
    apiserver.modify("configmaps", NAMESPACE, NAME, lambda o: o["data"].pop(HOLMES))
    outcome = stack.reconciler.reconcile_now()
    assert outcome.result == "success" and outcome.drifted == (HOLMES,)
    assert stack.converged()


def test_unchanged_input_writes_nothing_over_ten_resyncs(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    stack = make_stack(resync_interval=0.02, settle=True)
    wait_for(stack.converged)
    wait_for(
        lambda: metric(stack, "configmap_reconciliations_total", result="unchanged") >= 10,
        what="ten resyncs",
    )
    assert stack.writes() == 1
    assert metric(stack, "configmap_reconciliations_total", result="success") == 1


def test_a_reconcile_decides_only_the_services_changed_since_the_last(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus(), service("web", "shop"), service("db", "shop"))
    stack = make_stack(start=False)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    assert stack.reconciler.reconcile_now().wrote
    memo = stack.reconciler.memo
    assert (memo.decided, memo.replayed) == (3, 0)
    assert stack.reconciler.reconcile_now().result == "unchanged"
    assert (memo.decided, memo.replayed) == (0, 3)
    apiserver.create(prometheus("second", "monitoring"))
    wait_for(lambda: stack.cache.size == 4, what="the new Service in the cache")
    outcome = stack.reconciler.reconcile_now()
    assert outcome.wrote and (memo.decided, memo.replayed) == (1, 3)
    assert outcome.cycle is not None and len(outcome.cycle.discovery.discovered) == 2


def test_output_over_one_mebibyte_is_not_written(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    apiserver.create(operator_configmap({"big": "x" * (1024 * 1024 - 200)}))
    old = apiserver.get("configmaps", NAMESPACE, NAME)
    stack = make_stack(start=False)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    outcome = stack.reconciler.reconcile_now()
    assert outcome.result == "error" and outcome.error_type == "too_large"
    assert not outcome.temporary and "left as it is" in (outcome.error or "")
    assert apiserver.get("configmaps", NAMESPACE, NAME) == old
    assert stack.writes() == 0
    assert metric(stack, "configmap_update_errors_total", error_type="too_large") == 1


def test_403_is_permanent_with_the_rbac_hint_and_no_hot_loop(
    apiserver: ApiServer, make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    apiserver.seed(prometheus())
    apiserver.fail(403, reason="Forbidden", message="no", verb="create", resource="configmaps")
    stack = make_stack(backoff=Backoff(0.8, 30.0), settle=True)
    wait_for(lambda: stack.reconciler.last_outcome and stack.reconciler.last_outcome.error)
    outcome = stack.reconciler.last_outcome
    assert outcome is not None and outcome.result == "error" and outcome.error_type == "forbidden"
    assert not outcome.temporary
    assert "verbs: [create]" in (outcome.error or "") and "namespace kubernaut-system" in (
        outcome.error or ""
    )
    assert any("verbs: [create]" in r.getMessage() for r in caplog.records)
    time.sleep(0.5)  # time passing: nothing retries a permanent error on its own
    assert apiserver.count(verb="create", resource="configmaps") == 1
    assert metric(stack, "configmap_update_errors_total", error_type="forbidden") == 1


def test_server_errors_and_429_are_retried_with_backoff(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    apiserver.fail(500, verb="create", resource="configmaps", times=1)
    apiserver.fail(429, retry_after=1, verb="create", resource="configmaps", times=1)
    stack = make_stack()
    wait_for(stack.converged, what="the write after the retries")
    assert [r.status for r in apiserver.find_requests(verb="create", resource="configmaps")] == [
        500,
        429,
        201,
    ]
    assert metric(stack, "configmap_update_errors_total", error_type="server_error") == 1
    assert metric(stack, "configmap_update_errors_total", error_type="too_many_requests") == 1


def test_leadership_is_checked_immediately_before_the_write(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    answers = iter([True, False])  # leader for the cycle, lost just before the write
    stack = make_stack(start=False, is_leader=lambda: next(answers, False))
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    outcome = stack.reconciler.reconcile_now()
    assert outcome.result == "skipped_not_leader" and outcome.cycle is not None
    assert stack.writes() == 0
    follower = stack.reconciler.reconcile_now()
    assert follower.result == "skipped_not_leader" and follower.cycle is None


def test_dry_run_computes_and_never_writes(apiserver: ApiServer, make_stack: StackFactory) -> None:
    apiserver.seed(prometheus())
    stack = make_stack(start=False, dry_run=True, is_leader=lambda: False)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    outcome = stack.reconciler.reconcile_now()
    assert outcome.result == "dry_run" and outcome.previous is None
    assert outcome.desired is not None and HOLMES in outcome.desired["data"]
    assert stack.writes() == 0


def test_a_new_prometheus_reaches_the_configmap_quickly(
    apiserver: ApiServer, make_stack: StackFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    apiserver.seed(service("web", "shop"))
    stack = make_stack()
    wait_for(stack.converged)
    created = time.monotonic()
    apiserver.create(prometheus("fresh", "metrics"))
    wait_for(
        lambda: "fresh.metrics" in (stack.configmap() or {}).get("data", {}).get(HOLMES, ""),
        what="the new Prometheus in the ConfigMap",  # generous: speed is for benchmarks
    )
    latency = time.monotonic() - created
    with capsys.disabled():
        print(f"\n[latency] new Prometheus Service -> ConfigMap: {latency * 1000:.0f} ms")


def test_health_checks_run_in_the_worker_without_blocking_the_watch(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    health = GatedHealth()
    stack = make_stack(health=health)
    assert health.entered.wait(PATIENCE)  # a reconcile is inside the (slow) health round
    apiserver.create(prometheus("second", "metrics"))
    wait_for(lambda: stack.cache.size == 2, what="the watch, while health checks wait")
    assert stack.writes() == 0
    health.gate.set()
    wait_for(stack.converged, what="the ConfigMap once checks pass")
    stored = stack.configmap()
    assert stored is not None and "second.metrics" in stored["data"][HOLMES]


def test_stop_finishes_the_in_flight_reconcile(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    health = GatedHealth()
    stack = make_stack(health=health)
    assert health.entered.wait(PATIENCE)
    stopper = threading.Thread(target=stack.reconciler.stop, args=(PATIENCE,))
    stopper.start()
    wait_for(lambda: not stack.reconciler.ready, what="stopping")
    health.gate.set()
    stopper.join(PATIENCE)
    assert not stopper.is_alive()
    assert stack.writes() == 1 and stack.reconciler.last_outcome is not None
    assert stack.reconciler.last_outcome.result == "success"
    stack.reconciler.trigger("after stop")  # ignored
    assert stack.reconciler.reconciles == 1


def test_set_engine_swaps_for_the_next_reconcile(
    apiserver: ApiServer, make_stack: StackFactory, tmp_path: Any
) -> None:
    apiserver.seed(prometheus())
    stack = make_stack()
    wait_for(stack.converged)
    only_holmes = tmp_path / "holmes.yaml"
    only_holmes.write_text(
        CONFIG.replace(
            "namespace: kubernaut-system", "namespace: kubernaut-system, formats: [holmesgpt]"
        )
    )
    replacement = Engine.load(only_holmes)
    stack.reconciler.set_engine(replacement)
    assert stack.reconciler.engine is replacement
    wait_for(
        lambda: (
            set(json.loads(stack.configmap()["metadata"]["annotations"][KEY_HASHES])) == {HOLMES}
        )
    )  # type: ignore[index]


class RaisingRenderer(ListRenderer):
    name = "raising"
    data_key = "raising.txt"

    def render(self, discovered: Any) -> str:
        raise RuntimeError("render boom")


def test_a_failing_renderer_writes_nothing_and_is_permanent(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    apiserver.create(operator_configmap({"keep": "me"}))
    old = apiserver.get("configmaps", NAMESPACE, NAME)
    plugins = make_plugin_set(renderers=[RaisingRenderer])
    broken = Engine(load_config(None, plugins), plugins)
    stack = make_stack(start=False, engine=broken)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    outcome = stack.reconciler.reconcile_now()
    assert outcome.result == "error" and outcome.error_type == "render" and not outcome.temporary
    assert "render boom" in (outcome.error or "")
    assert apiserver.get("configmaps", NAMESPACE, NAME) == old and stack.writes() == 0
    assert metric(stack, "configmap_update_errors_total", error_type="render") == 1


class MalformedStore:
    """The store boundary answering a ConfigMap no API server would (data values not strings)."""

    def read(self) -> dict[str, Any]:
        return operator_configmap({"count": 3})  # type: ignore[dict-item]

    def write(self, configmap: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        raise AssertionError("must not write")


def test_a_malformed_configmap_is_a_permanent_error(apiserver: ApiServer, engine: Engine) -> None:
    apiserver.seed(prometheus())
    cache = ServiceCache(apiserver.api_client, timeouts=FAST)
    cache.start()
    try:
        assert cache.wait_synced(PATIENCE)
        reconciler = Reconciler(engine, cache, MalformedStore(), metrics=Metrics())
        outcome = reconciler.reconcile_now()
    finally:
        cache.stop()
    assert outcome.result == "error" and outcome.error_type == "invalid_configmap"
    assert "$.data.count" in (outcome.error or "") and "fix or delete" in (outcome.error or "")


class FlakyHealth:
    """A health checker with a bug the first time it runs."""

    def __init__(self) -> None:
        self.calls = 0

    def check(self, discovered: Any) -> list[Any]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("checker bug")
        return list(discovered)


def test_an_unexpected_exception_is_an_outcome_and_the_worker_goes_on(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    stack = make_stack(start=False, health=FlakyHealth())
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    outcome = stack.reconciler.reconcile_now()
    assert outcome.result == "error" and outcome.error_type == "internal"
    assert "checker bug" in (outcome.error or "") and stack.writes() == 0
    stack.reconciler.start()
    wait_for(stack.converged, what="the next reconcile")


def test_a_burst_of_service_events_is_coalesced(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    stack = make_stack(debounce=0.2, settle=True)
    wait_for(stack.converged)
    wait_for(lambda: metric(stack, "configmap_updates_total") == 1)
    before = stack.reconciler.reconciles
    for i in range(20):
        apiserver.create(prometheus(f"burst-{i}", "metrics"))
    wait_for(stack.converged, what="all twenty in the ConfigMap")
    wait_for(lambda: metric(stack, "configmap_updates_total") >= 2)
    # Twenty events, a handful of reconciles (not twenty): one window, plus stragglers.
    assert stack.reconciler.reconciles - before <= 5
    stored = stack.configmap()
    assert stored is not None and all(
        f"burst-{i}.metrics" in stored["data"][HOLMES] for i in range(20)
    )


def test_echoes_of_its_own_writes_are_not_edits(
    apiserver: ApiServer, make_stack: StackFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    apiserver.seed(prometheus())
    stack = make_stack(start=False)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    assert stack.reconciler.reconcile_now().wrote
    first = stack.configmap()
    apiserver.modify("configmaps", NAMESPACE, NAME, lambda o: o["data"].pop(HOLMES))
    assert stack.reconciler.reconcile_now().wrote
    second = stack.configmap()
    triggered = Recorder()
    monkeypatch.setattr(stack.reconciler, "trigger", triggered)
    # A slow watch delivers the first write's echo after the second write: still an echo.
    stack.reconciler.on_configmap_event("configmap-changed", first)
    stack.reconciler.on_configmap_event("configmap-changed", second)
    assert triggered.calls == []
    stack.reconciler.on_configmap_event("configmap-deleted", second)  # never an echo
    edited = {"metadata": {"resourceVersion": "1"}}
    stack.reconciler.on_configmap_event("configmap-changed", edited)
    assert triggered.calls == ["configmap-deleted", "configmap-changed"]


def test_an_invalid_service_is_reported_once_not_on_every_reconcile(
    apiserver: ApiServer, make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    opted_in = {"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": "billing"}
    bad = {**opted_in, "kubernaut.io/toolset-endpoint": "http://10.0.0.1:80"}
    apiserver.seed(prometheus(), service("reports", "shop", annotations=bad))
    caplog.set_level("INFO", logger="dyntoolset.controller.reconciler")
    stack = make_stack(settle=True)
    wait_for(stack.converged, what="the ConfigMap")
    for _ in range(3):  # reconciles that change nothing must not repeat the warning
        stack.reconciler.reconcile_now()
    warnings = [r.getMessage() for r in caplog.records if "skipping Service" in r.getMessage()]
    assert warnings == [
        "skipping Service shop/reports (invalid, detector custom): annotation "
        "kubernaut.io/toolset-endpoint must name the Service's DNS name, not an IP address"
    ]
    # Fixed by its owner: said once, and not warned about again.
    apiserver.put(service("reports", "shop", annotations=opted_in))
    wait_for(
        lambda: any("no longer skipped" in r.getMessage() for r in caplog.records),
        what="the fix to be noticed",
    )
    stack.reconciler.reconcile_now()
    assert len([r for r in caplog.records if "skipping Service" in r.getMessage()]) == 1
