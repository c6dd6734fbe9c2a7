"""The reconciler's public signals: ``idle``, ``wait_idle`` and ``on_reconcile``.

Against the emulator with a real Service cache and ConfigMap store; a reconcile
is held inside its health round (``GatedHealth``) to observe "running", and a
long debounce to observe "due". Nothing is timed: the tests count outcomes and
wait on the reconciler's own condition.
"""

from __future__ import annotations

import logging
import threading

import pytest

from dyntoolset.controller.reconciler import ReconcileOutcome
from dyntoolset.testing.apiserver import ApiServer
from tests.kube._support import PATIENCE, prometheus, wait_for
from tests.kube.conftest import GatedHealth, StackFactory


def test_idle_once_the_first_reconcile_is_done(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    stack = make_stack(settle=True)
    assert stack.reconciler.wait_idle(PATIENCE)
    # Idle means its work is published: the write and the outcome. (The watch's
    # event of that write may have asked for one more reconcile, which found
    # nothing to change.)
    assert stack.reconciler.idle
    outcome = stack.reconciler.last_outcome
    assert outcome is not None and outcome.result in ("success", "unchanged")
    assert stack.writes() == 1 and stack.converged()


def test_not_idle_while_a_reconcile_runs(apiserver: ApiServer, make_stack: StackFactory) -> None:
    apiserver.seed(prometheus())
    health = GatedHealth()
    stack = make_stack(health=health)
    assert health.entered.wait(PATIENCE)  # held inside the cycle
    assert not stack.reconciler.idle
    # The gate stays shut: the wait must give up, saying so.
    assert stack.reconciler.wait_idle(0.2) is False
    reconciles = stack.reconciler.reconciles
    health.gate.set()
    assert stack.reconciler.wait_idle(PATIENCE)
    assert stack.reconciler.reconciles > reconciles


def test_not_idle_while_a_trigger_waits_out_its_debounce(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    stack = make_stack(settle=True, debounce=0.5)
    assert stack.reconciler.wait_idle(PATIENCE)
    before = stack.reconciler.reconciles
    stack.reconciler.trigger("manual-test")
    # Due (in its debounce window) is not idle, and idle again only after it ran.
    assert not stack.reconciler.idle
    assert stack.reconciler.wait_idle(PATIENCE)
    assert stack.reconciler.reconciles == before + 1
    outcome = stack.reconciler.last_outcome
    assert outcome is not None and outcome.reasons == ("manual-test",)


def test_an_unstarted_reconciler_with_a_pending_trigger_is_not_idle(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    stack = make_stack(start=False)
    assert stack.reconciler.idle  # nothing asked for yet
    stack.reconciler.trigger("service")
    assert not stack.reconciler.idle  # due, and no worker will run it
    assert stack.reconciler.wait_idle(0.1) is False
    # reconcile_now takes the pending trigger with it.
    outcome = stack.reconciler.reconcile_now()
    assert outcome.reasons == ("manual", "service")
    assert stack.reconciler.idle


def test_a_stopped_reconciler_is_idle_though_a_trigger_was_pending(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    stack = make_stack(settle=True, debounce=3600.0)
    # The first reconcile of a started stack waits out the hour-long debounce too.
    assert not stack.reconciler.idle
    stack.reconciler.stop(PATIENCE)
    # Stopped: nothing more will run, so the pending trigger is no work left.
    assert stack.reconciler.wait_idle(PATIENCE)
    assert stack.reconciler.reconciles == 0


def test_on_reconcile_sees_every_outcome_with_its_reasons_before_idle(
    apiserver: ApiServer, make_stack: StackFactory
) -> None:
    apiserver.seed(prometheus())
    stack = make_stack(start=False)
    seen: list[ReconcileOutcome] = []
    stack.reconciler.on_reconcile(seen.append)
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    stack.reconciler.start()
    assert stack.reconciler.wait_idle(PATIENCE)
    # Every reconcile so far was reported, the last one being the published outcome.
    assert len(seen) == stack.reconciler.reconciles >= 1
    assert seen[-1] is stack.reconciler.last_outcome
    assert "start" in seen[0].reasons
    stack.reconciler.trigger("resync-test")
    assert stack.reconciler.wait_idle(PATIENCE)
    assert seen[-1].reasons == ("resync-test",) and seen[-1].result == "unchanged"
    assert len(seen) == stack.reconciler.reconciles


def test_a_failing_callback_is_logged_and_the_reconciler_goes_on(
    apiserver: ApiServer, make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    apiserver.seed(prometheus())
    stack = make_stack(start=False)
    calls: list[str] = []

    def broken(outcome: ReconcileOutcome) -> None:
        calls.append("broken")
        raise RuntimeError("callback bug")

    stack.reconciler.on_reconcile(broken)
    stack.reconciler.on_reconcile(lambda outcome: calls.append(outcome.result))
    stack.cache.start()
    assert stack.cache.wait_synced(PATIENCE)
    with caplog.at_level(logging.ERROR, logger="dyntoolset.controller.reconciler"):
        first = stack.reconciler.reconcile_now()
        second = stack.reconciler.reconcile_now()
    assert (first.result, second.result) == ("success", "unchanged")
    # Both callbacks ran both times: the broken one stopped neither the other nor us.
    assert calls == ["broken", "success", "broken", "unchanged"]
    failures = [r for r in caplog.records if "a reconcile callback failed" in r.getMessage()]
    assert len(failures) == 2 and failures[0].exc_info is not None
    assert stack.reconciler.idle


def test_wait_idle_wakes_every_waiter(apiserver: ApiServer, make_stack: StackFactory) -> None:
    apiserver.seed(prometheus())
    health = GatedHealth()
    stack = make_stack(health=health)
    assert health.entered.wait(PATIENCE)
    results: list[bool] = []
    waiters = [
        threading.Thread(target=lambda: results.append(stack.reconciler.wait_idle(PATIENCE)))
        for _ in range(3)
    ]
    for waiter in waiters:
        waiter.start()
    health.gate.set()
    for waiter in waiters:
        waiter.join(PATIENCE)
    wait_for(lambda: len(results) == 3, what="every waiter")
    assert results == [True, True, True]
