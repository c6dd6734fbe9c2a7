"""LeaderElector against the emulator: acquisition, expiry on the local clock, release, handover."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from dyntoolset.kube.lease import LeaderElector, LeaseTimings
from dyntoolset.testing.apiserver import ApiServer

pytest_plugins = ["dyntoolset.testing.pytest_plugin"]

NS, NAME = "kube-system", "dyntoolset"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(
    api: ApiServer, identity: str, clock: Callable[[], float] = time.monotonic, **kwargs: object
) -> LeaderElector:
    # A client of its own per elector, as in two processes.
    return LeaderElector(
        api.new_api_client(), name=NAME, namespace=NS, identity=identity, clock=clock, **kwargs
    )  # type: ignore[arg-type]


def lease(api: ApiServer) -> dict[str, object]:
    found = api.get("leases", NS, NAME)
    assert found is not None
    spec = found["spec"]
    assert isinstance(spec, dict)
    return spec


def test_timings_must_leave_a_gap_between_renew_deadline_and_lease_duration() -> None:
    assert LeaseTimings().lease_duration == 15.0
    assert (LeaseTimings().renew_deadline, LeaseTimings().retry_period) == (10.0, 2.0)
    with pytest.raises(ValueError, match="lease_duration > renew_deadline > retry_period"):
        LeaseTimings(lease_duration=10, renew_deadline=10, retry_period=2)
    with pytest.raises(ValueError, match="retry_period > 0"):
        LeaseTimings(lease_duration=3, renew_deadline=2, retry_period=0)


def test_first_candidate_creates_the_lease_and_leads(apiserver: ApiServer) -> None:
    clock = FakeClock()
    started: list[str] = []
    a = elector(apiserver, "a", clock, on_started_leading=lambda: started.append("a"))
    assert not a.is_leader()
    assert a.try_acquire_or_renew()
    assert a.is_leader()
    assert started == ["a"]
    spec = lease(apiserver)
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert spec["renewTime"] and spec["acquireTime"]
    # Renewing keeps acquireTime, moves renewTime, calls no callback again.
    acquired = spec["acquireTime"]
    assert a.try_acquire_or_renew()
    assert lease(apiserver)["acquireTime"] == acquired
    assert started == ["a"]
    # Every write was an optimistic update with the version just read.
    updates = apiserver.find_requests(verb="update", resource="leases")
    assert updates and all(r.body["metadata"]["resourceVersion"] for r in updates)


def test_a_follower_waits_out_the_lease_on_its_own_clock(apiserver: ApiServer) -> None:
    clock = FakeClock()
    a, b = elector(apiserver, "a", clock), elector(apiserver, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    assert b.holder == "a"
    # The Lease's renewTime says nothing to b: only how long b has seen no change.
    clock.now += 14.0
    assert not b.try_acquire_or_renew()
    assert a.try_acquire_or_renew()  # a renews ...
    assert not b.try_acquire_or_renew()  # ... b sees the change and starts counting again
    clock.now += 14.0
    assert not b.try_acquire_or_renew()
    assert not b.is_leader()
    clock.now += 1.0  # 15 s after b saw a's last renew
    assert not a.is_leader()  # a's renew deadline (10 s) passed long before
    assert b.try_acquire_or_renew()
    assert b.is_leader()
    spec = lease(apiserver)
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)


def test_remote_timestamps_are_not_trusted(apiserver: ApiServer) -> None:
    """A Lease whose renewTime lies far in the past is still held until b saw it unchanged
    for a whole lease duration (the holder's clock may be wrong)."""
    apiserver.create(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": NAME, "namespace": NS},
            "spec": {
                "holderIdentity": "other",
                "leaseDurationSeconds": 15,
                "acquireTime": "2001-01-01T00:00:00.000000Z",
                "renewTime": "2001-01-01T00:00:00.000000Z",
            },
        }
    )
    clock = FakeClock()
    b = elector(apiserver, "b", clock)
    assert not b.try_acquire_or_renew()
    clock.now += 14.0
    assert not b.try_acquire_or_renew()
    clock.now += 1.0
    assert b.try_acquire_or_renew()


def test_api_errors_while_renewing_lose_leadership_at_the_renew_deadline_not_before(
    apiserver: ApiServer,
) -> None:
    clock = FakeClock()
    stopped: list[bool] = []
    a = elector(apiserver, "a", clock, on_stopped_leading=lambda: stopped.append(True))
    assert a.try_acquire_or_renew()
    apiserver.fail(500, verb="update", resource="leases")
    apiserver.fail(503, verb="get", resource="leases", times=1)
    for _ in range(4):
        clock.now += 2.0
        assert not a.try_acquire_or_renew()
    clock.now += 1.99  # 9.99 s after the last successful renew started
    assert a.is_leader()
    assert stopped == []
    clock.now += 0.01
    assert not a.is_leader()
    # Once the API answers again a renew restores leadership (the Lease is still ours).
    apiserver.faults.clear()
    assert a.try_acquire_or_renew()
    assert a.is_leader()


def test_connection_errors_count_as_failed_renewals(apiserver: ApiServer) -> None:
    clock = FakeClock()
    client = apiserver.new_api_client()
    a = LeaderElector(
        client, name=NAME, namespace=NS, identity="a", clock=clock, request_timeout=(1, 1)
    )
    assert a.try_acquire_or_renew()
    client.configuration.host = "http://127.0.0.1:9"  # nothing listens: connection refused
    clock.now += 2.0
    assert not a.try_acquire_or_renew()
    assert a.is_leader()
    clock.now += 8.0
    assert not a.is_leader()


def test_a_leader_that_sees_another_holder_stops_at_once(apiserver: ApiServer) -> None:
    clock_a, clock_b = FakeClock(), FakeClock()
    stopped: list[str] = []
    a = elector(apiserver, "a", clock_a, on_stopped_leading=lambda: stopped.append("a"))
    b = elector(apiserver, "b", clock_b)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    clock_b.now += 15.0
    assert b.try_acquire_or_renew()
    # a's clock has not moved (it was paused, say): its deadline alone would keep it leader.
    assert a.is_leader()
    assert not a.try_acquire_or_renew()
    assert not a.is_leader()
    assert stopped == ["a"]


def test_conflicting_update_means_another_writer_won(apiserver: ApiServer) -> None:
    clock = FakeClock()
    a = elector(apiserver, "a", clock)
    assert a.try_acquire_or_renew()
    apiserver.fail(409, reason="Conflict", verb="update", resource="leases", times=1)
    clock.now += 2
    assert not a.try_acquire_or_renew()
    assert a.is_leader()  # one lost round is not lost leadership


def test_stop_while_leading_releases_the_lease(
    apiserver: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    events: list[str] = []
    a = elector(apiserver, "a", clock, on_stopped_leading=lambda: events.append("stopped"))
    b = elector(apiserver, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    with caplog.at_level(logging.INFO, logger="dyntoolset.lease"):
        a.stop()
    assert events == ["stopped"]
    # Giving up leadership on shutdown is no warning.
    assert [r.levelname for r in caplog.records if "leadership lost" in r.message] == ["INFO"]
    assert not a.is_leader()
    spec = lease(apiserver)
    assert not spec.get("holderIdentity")
    assert spec["leaseDurationSeconds"] == 1
    # b takes over at its next round, without waiting out the lease.
    assert b.try_acquire_or_renew()
    assert lease(apiserver)["holderIdentity"] == "b"


def test_stop_releases_even_after_the_renew_deadline_passed(apiserver: ApiServer) -> None:
    clock = FakeClock()
    a, b = elector(apiserver, "a", clock), elector(apiserver, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    clock.now += 11  # a's deadline passed (say, it was paused); the Lease still names it
    assert not a.is_leader()
    a.stop()
    assert not lease(apiserver).get("holderIdentity")
    assert b.try_acquire_or_renew()  # at once, not 15 s after b last saw a renew


def test_a_stopped_elector_makes_no_more_calls(apiserver: ApiServer) -> None:
    a = elector(apiserver, "a", FakeClock())
    a.stop()
    before = len(apiserver.requests)
    assert not a.try_acquire_or_renew()
    assert not a.is_leader()
    assert len(apiserver.requests) == before


def test_stop_of_a_follower_writes_nothing(apiserver: ApiServer) -> None:
    clock = FakeClock()
    a, b = elector(apiserver, "a", clock), elector(apiserver, "b", clock)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    writes = len(apiserver.writes("leases"))
    b.stop()
    assert len(apiserver.writes("leases")) == writes
    assert lease(apiserver)["holderIdentity"] == "a"


def test_a_failing_release_is_logged_and_leadership_still_ends(
    apiserver: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    a = elector(apiserver, "a", FakeClock())
    assert a.try_acquire_or_renew()
    apiserver.fail(500, verb="update", resource="leases")
    a.stop()
    assert not a.is_leader()
    assert "release failed" in caplog.text
    assert lease(apiserver)["holderIdentity"] == "a"


def test_a_raising_callback_does_not_stop_the_election(
    apiserver: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("callback broke")

    a = elector(apiserver, "a", FakeClock(), on_started_leading=boom)
    assert a.try_acquire_or_renew()
    assert a.is_leader()
    assert "leadership callback failed" in caplog.text


# -- real threads, short timings ---------------------------------------------------

FAST = LeaseTimings(lease_duration=1.5, renew_deadline=1.0, retry_period=0.1)


@pytest.fixture
def pair(apiserver: ApiServer) -> Iterator[tuple[LeaderElector, LeaderElector]]:
    a = elector(apiserver, "a", timings=FAST)
    b = elector(apiserver, "b", timings=FAST)
    yield a, b
    a.stop()
    b.stop()


def watch_leaders(
    electors: tuple[LeaderElector, ...], until: Callable[[], bool], limit: float = 30.0
) -> list[tuple[bool, ...]]:
    """Sample ``is_leader()`` of all electors until ``until()``; fail if two lead at once."""
    samples = []
    deadline = time.monotonic() + limit
    while not until():
        sample = tuple(e.is_leader() for e in electors)
        assert sum(sample) <= 1, f"two leaders at once: {sample}"
        samples.append(sample)
        assert time.monotonic() < deadline, "no leader change within the limit"
        time.sleep(0.005)
    return samples


def test_two_electors_exactly_one_leads(pair: tuple[LeaderElector, LeaderElector]) -> None:
    a, b = pair
    a.start()
    b.start()
    watch_leaders(pair, lambda: a.is_leader() or b.is_leader())
    leader = a if a.is_leader() else b
    # Several renew periods later, still exactly one, and the same one.
    rounds = threading.Event()
    timer = threading.Timer(FAST.lease_duration * 2, rounds.set)
    timer.start()
    samples = watch_leaders(pair, rounds.is_set)
    assert all(sum(s) == 1 for s in samples[-5:])
    assert leader.is_leader()


def test_a_partitioned_leader_is_replaced_and_never_overlaps(apiserver: ApiServer) -> None:
    client_a = apiserver.new_api_client()
    lost = threading.Event()
    a = LeaderElector(
        client_a,
        name=NAME,
        namespace=NS,
        identity="a",
        timings=FAST,
        request_timeout=(0.2, 0.2),
        on_stopped_leading=lost.set,
    )
    b = elector(apiserver, "b", timings=FAST)
    try:
        a.start()
        watch_leaders((a, b), a.is_leader)
        b.start()
        time.sleep(FAST.retry_period * 3)
        assert a.is_leader() and not b.is_leader()
        cut = time.monotonic()
        client_a.configuration.host = "http://127.0.0.1:9"  # a can no longer reach the API
        watch_leaders((a, b), b.is_leader)
        took = time.monotonic() - cut
        assert lost.is_set()
        # b waits one lease duration after it last saw a renew (one-sided, wide bound).
        assert took < FAST.lease_duration * 10
        assert lease(apiserver)["holderIdentity"] == "b"
    finally:
        a.stop()
        b.stop()


def test_stop_releases_and_the_follower_takes_over(apiserver: ApiServer) -> None:
    slow = LeaseTimings(lease_duration=60, renew_deadline=1.0, retry_period=0.1)
    a = elector(apiserver, "a", timings=slow)
    b = elector(apiserver, "b", timings=slow)
    try:
        a.start()
        watch_leaders((a, b), a.is_leader)
        b.start()
        a.stop()
        # A 60 s lease: only the release lets b in this soon.
        watch_leaders((a, b), b.is_leader, limit=20)
    finally:
        a.stop()
        b.stop()
