"""DiscoveryMemo: unchanged Services are replayed, not re-decided, with the same result."""

from __future__ import annotations

import gc
import logging
import types

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dyntoolset import discovery as discovery_module
from dyntoolset.config import load_config_text
from dyntoolset.detector import DetectContext
from dyntoolset.discovery import DiscoveryMemo, DiscoveryResult, create_detectors, discover
from dyntoolset.model import Discovered, Service
from dyntoolset.testing import make_plugin_set, make_service
from tests.helpers import BrokenDetector, LabelDetector, PickyDetector
from tests.property_support import Outcomes

CALLS: list[str] = []


class Counted(LabelDetector):
    """``alpha`` of tests.helpers, counting its calls."""

    def detect(self, service: Service, ctx: DetectContext) -> Discovered | None:
        CALLS.append(service.key)
        return super().detect(service, ctx)


def _detectors(*classes, text: str = "detectors: {alpha: {namespaces: ['!held']}}"):
    plugins = make_plugin_set(*classes, builtin_detectors=False)
    return create_detectors(load_config_text(text, "test", plugins), plugins)


def _summary(result: DiscoveryResult):
    return (
        [(d.key, d.detector, d.endpoint) for d in result.discovered],
        dict(result.skip_counts),
        result.skips,
        result.failures,
        {name: (s.found, s.errors) for name, s in result.detectors.items()},
        result.services_seen,
    )


SERVICES = [
    make_service("a", labels={"app": "alpha"}),
    make_service("b", labels={"app": "other"}),
    make_service("c", "held", labels={"app": "alpha"}),
    make_service("d", labels={"app": "picky", "mode": "bad"}),
]


def test_a_second_run_over_the_same_snapshots_consults_no_detector_and_agrees():
    detectors = _detectors(Counted, PickyDetector)
    memo = DiscoveryMemo()
    CALLS.clear()
    first = discover(SERVICES, detectors, memo)
    assert CALLS and (memo.decided, memo.replayed) == (4, 0)
    CALLS.clear()
    second = discover(list(SERVICES), detectors, memo)
    # Only the explanation of the held-back Service asks its detector again
    # (whether it would have matched), as every run does.
    assert CALLS == ["held/c"] and (memo.decided, memo.replayed) == (0, 4)
    assert _summary(second) == _summary(first) == _summary(discover(SERVICES, detectors))
    assert [d.key for d in second.discovered] == ["default/a"]
    assert second.skip_counts["namespace_filtered"] == 1 and second.skip_counts["invalid"] == 1


def test_changed_added_and_removed_services_are_decided_afresh_and_forgotten():
    detectors = _detectors(Counted)
    memo = DiscoveryMemo()
    discover(SERVICES, detectors, memo)
    changed = attrs.evolve(SERVICES[1], labels={"app": "alpha"})  # now an alpha
    added = make_service("e", labels={"app": "alpha"})
    CALLS.clear()
    result = discover([SERVICES[0], changed, added], detectors, memo)
    assert sorted(CALLS) == ["default/b", "default/e"]
    assert [d.key for d in result.discovered] == ["default/a", "default/b", "default/e"]
    assert result.services_seen == 3 and (memo.decided, memo.replayed) == (2, 1)
    CALLS.clear()
    discover([SERVICES[2]], detectors, memo)  # a, b and e are gone: forgotten
    assert (memo.decided, memo.replayed) == (1, 0)


def test_an_equal_but_new_snapshot_is_decided_again():
    # Identity, not equality: the cache makes a new snapshot per watch event.
    detectors = _detectors(Counted)
    memo = DiscoveryMemo()
    discover(SERVICES[:1], detectors, memo)
    CALLS.clear()
    discover([attrs.evolve(SERVICES[0])], detectors, memo)
    assert CALLS == ["default/a"]


def test_other_detectors_start_the_memo_afresh():
    memo = DiscoveryMemo()
    discover(SERVICES, _detectors(Counted), memo)
    CALLS.clear()
    reloaded = _detectors(Counted, text="detectors: {alpha: {namespaces: ['held']}}")
    result = discover(SERVICES, reloaded, memo)
    assert (memo.decided, memo.replayed) == (4, 0)
    assert [d.key for d in result.discovered] == ["held/c"]


def test_a_broken_detectors_failures_are_counted_and_logged_again_on_every_run(caplog):
    # The per-cycle error metrics and the one ERROR line per cycle must not
    # fade because the outcome was replayed.
    caplog.set_level(logging.ERROR, logger="dyntoolset.discovery")
    detectors = _detectors(BrokenDetector, Counted)
    memo = DiscoveryMemo()
    services = [make_service(f"s{i}", labels={"app": "alpha"}) for i in range(3)]
    results = [discover(services, detectors, memo) for _ in range(2)]
    assert memo.replayed == 3
    for result in results:
        assert result.detectors["broken"].errors == 3 and len(result.failures) == 3
        assert [d.detector for d in result.discovered] == ["alpha"] * 3
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 2  # the first failure of each run
    # The replayed failure still shows where the detector raised.
    replayed = logging.Formatter().formatException(tracebacks[1].exc_info)
    assert "Traceback of the first failure" in replayed and "in detect" in replayed
    assert 'raise RuntimeError("boom")' in replayed


def test_a_mapping_is_taken_as_already_deduplicated():
    mapping = {s.key: s for s in SERVICES}
    result = discover(mapping, _detectors(Counted))
    assert result.services_seen == 4 and [d.key for d in result.discovered] == ["default/a"]


# -- a sequence of cluster changes: the memo never changes an answer ------------------

_NAMES = [f"s{i}" for i in range(6)]
_apps = st.sampled_from(["alpha", "picky", "other"])


@st.composite
def _changes(draw: st.DrawFn) -> list[tuple[str, str, str | None]]:
    """(name, action, app): upserts with a label and mode, deletes, or keep-alls."""
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(_NAMES),
                st.sampled_from(["upsert", "upsert", "delete", "touch"]),
                _apps,
            ),
            min_size=1,
            max_size=25,
        )
    )


@pytest.mark.outcomes({"replayed": 0.3, "decided": 0.3})
@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_changes())
def test_with_or_without_the_memo_every_run_gives_the_same_result(
    outcomes: Outcomes, changes
) -> None:
    detectors = _detectors(BrokenDetector, Counted, PickyDetector)
    memo = DiscoveryMemo()
    cluster: dict[str, Service] = {}
    for step, (name, action, app) in enumerate(changes):
        if action == "delete":
            cluster.pop(name, None)
        elif action == "upsert":
            cluster[name] = make_service(
                name,
                "held" if step % 3 == 0 else "default",
                labels={"app": app, "mode": "bad" if step % 2 else "ok"},
            )
        # A run after every change, as the controller reconciles.
        services = list(cluster.values())
        assert _summary(discover(services, detectors, memo)) == _summary(
            discover(services, detectors)
        )
        if services:
            outcomes.saw(
                *(["replayed"] if memo.replayed else []), *(["decided"] if memo.decided else [])
            )


# -- what a run leaves behind ---------------------------------------------------------


def _discovery_frames() -> list[object]:
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, types.FrameType) and o.f_code.co_filename == discovery_module.__file__
    ]


@pytest.mark.parametrize("keep_memo", [False, True], ids=["plain", "memo"])
def test_no_failure_or_invalid_service_keeps_the_run_alive(
    keep_memo: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # An exception kept with its traceback keeps the frames it passed
    # through, and through each frame's caller the whole run: every Service
    # of a 50,000-Service dump stayed alive until a collection (1.3 s of it
    # at the end of `dyntoolset discover`), and a memo would keep them for
    # as long as the broken Service stays the same.
    # No log record (which holds its traceback while a handler keeps it).
    caplog.set_level(logging.CRITICAL, logger="dyntoolset.discovery")
    memo = DiscoveryMemo() if keep_memo else None
    detectors = _detectors(BrokenDetector, Counted, PickyDetector)
    services = [
        make_service("broken", labels={"app": "alpha"}),
        make_service("invalid", labels={"app": "picky", "mode": "bad"}),
    ]
    collector_was_on = gc.isenabled()
    gc.disable()  # what is left must be freed by reference counting alone
    try:
        gc.collect()
        result = discover(services, detectors, memo)
        assert result.failures and result.skip_counts["invalid"] == 1
        del result
        assert _discovery_frames() == []
    finally:
        if collector_was_on:
            gc.enable()
