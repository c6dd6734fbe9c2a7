"""The counted pause of the cycle collector (issue 15): safe across threads and nesting."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from dyntoolset.gcpause import cycle_collector_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    if was:
        gc.enable()
    else:  # pragma: no cover - the suite runs with the collector on
        gc.disable()


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    gc.enable()
    with cycle_collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_it_is_on_again_after_an_exception() -> None:
    gc.enable()
    with pytest.raises(KeyError), cycle_collector_paused():
        raise KeyError("boom")
    assert gc.isenabled()


def test_a_collector_someone_turned_off_stays_off() -> None:
    gc.disable()
    with cycle_collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_nested_pauses_switch_it_on_only_when_the_outermost_ends() -> None:
    gc.enable()
    with cycle_collector_paused():
        with cycle_collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_in_two_threads_keep_it_off_until_both_end() -> None:
    # Thread A pauses, B pauses, A ends: an uncounted pause would switch the
    # collector on under B's feet (or, B having seen it off, leave it off for good).
    gc.enable()
    a_paused, b_paused, a_ended, b_may_end = (threading.Event() for _ in range(4))
    seen_by_b: list[bool] = []

    def a() -> None:
        with cycle_collector_paused():
            a_paused.set()
            b_paused.wait(5)
        a_ended.set()

    def b() -> None:
        a_paused.wait(5)
        with cycle_collector_paused():
            b_paused.set()
            a_ended.wait(5)
            seen_by_b.append(gc.isenabled())
            b_may_end.wait(5)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    a_ended.wait(5)
    assert a_ended.is_set()
    assert not gc.isenabled()  # B still pauses it
    b_may_end.set()
    for thread in threads:
        thread.join(5)
    assert seen_by_b == [False]
    assert gc.isenabled()
