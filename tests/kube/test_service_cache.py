"""ServiceCache against the emulator through the real client: the watch/list test plan."""

from __future__ import annotations

import gc
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from dyntoolset.config import parse_config, resolve_config
from dyntoolset.kube.errors import Backoff
from dyntoolset.kube.services import ServiceCache, namespace_scope
from dyntoolset.plugins import load_plugins
from dyntoolset.testing.apiserver import ApiServer
from tests.kube._support import FAST, PATIENCE, Recorder, fast_backoff, service, wait_for

CacheFactory = Callable[..., ServiceCache]


@pytest.fixture
def make_cache(apiserver: ApiServer) -> Iterator[CacheFactory]:
    started: list[ServiceCache] = []

    def make(**options: Any) -> ServiceCache:
        options.setdefault("timeouts", FAST)
        options.setdefault("backoff", fast_backoff)
        listener = options.pop("on_change", None)
        cache = ServiceCache(apiserver.api_client, **options)
        if listener is not None:  # before start(), or the first "synced" may be missed
            cache.on_change(listener)
        started.append(cache)
        cache.start()
        return cache

    yield make
    for cache in started:
        cache.stop()


def names(cache: ServiceCache) -> list[str]:
    return [f"{s.namespace}/{s.name}" for s in cache.services()]


def watches(apiserver: ApiServer) -> list[Any]:
    return apiserver.find_requests(verb="watch", resource="services")


class RecordingBackoff(Backoff):
    """The real backoff, remembering every delay it chose."""

    def __init__(self, base: float, cap: float) -> None:
        super().__init__(base, cap, rng=random.Random(3))
        self.delays: list[float] = []

    def delay(self, retry_after: float | None = None) -> float:
        chosen = super().delay(retry_after)
        self.delays.append(chosen)
        return chosen


def test_lists_in_pages_then_watches_from_the_lists_version(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    apiserver.seed(*(service(f"svc-{i}", "apps") for i in range(7)))
    listed_at = apiserver.resource_version
    changes = Recorder()
    cache = make_cache(page_size=3, on_change=changes)
    assert cache.wait_synced(PATIENCE)
    assert changes.wait(1)[0] == "synced"
    assert cache.size == 7 and names(cache)[0] == "apps/svc-0"
    lists = apiserver.find_requests(verb="list", resource="services")
    assert [r.query.get("limit") for r in lists] == ["3", "3", "3"]
    assert [bool(r.query.get("continue")) for r in lists] == [False, True, True]
    wait_for(lambda: watches(apiserver), what="the watch")
    watch = watches(apiserver)[0]
    assert watch.query["allowWatchBookmarks"] == "true"
    assert watch.query["resourceVersion"] == str(listed_at)
    assert float(watch.query["timeoutSeconds"]) > 0

    apiserver.create(service("new", "apps"))
    apiserver.delete("services", "apps", "svc-0")
    wait_for(lambda: "apps/new" in names(cache) and "apps/svc-0" not in names(cache))
    assert cache.synced and cache.relists == 1
    assert changes.calls.count("service") >= 2
    cache.stop()  # cuts the open watch: the threads end promptly, not at the read timeout
    assert not [t for t in cache._threads if t.is_alive()]


def _raw_services_alive(prefix: str) -> int:
    """Listed Service objects (parsed JSON with metadata and spec) named ``prefix*`` alive.

    List items come without ``kind`` (as from a real server); the emulator in
    this process keeps its own objects with one, and those are not counted.
    """
    gc.collect()
    return sum(
        1
        for o in gc.get_objects()
        if type(o) is dict
        and "spec" in o
        and "kind" not in o
        and type(o.get("metadata")) is dict
        and str(o["metadata"].get("name", "")).startswith(prefix)
    )


def test_the_listed_json_is_not_kept_while_watching(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    # Only the snapshots stay: holding the raw list through the watch costs
    # several kilobytes per Service (benchmark workload 3).
    apiserver.seed(*(service(f"rawcheck-{i}", "apps") for i in range(20)))
    cache = make_cache(page_size=7)
    assert cache.wait_synced(PATIENCE)
    wait_for(lambda: watches(apiserver), what="the watch")
    assert cache.size == 20
    assert _raw_services_alive("rawcheck-") == 0


def test_each_page_is_snapshotted_as_it_arrives(
    apiserver: ApiServer, make_cache: CacheFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # While the third page is read, the first two are snapshots already.
    apiserver.seed(*(service(f"paged-{i}", "apps") for i in range(20)))
    from dyntoolset.kube import watch as watch_module

    alive_at_page: list[int] = []
    read_page = watch_module.Reflector._list_page

    def counting(self: Any, token: str | None) -> bytes:
        alive_at_page.append(_raw_services_alive("paged-"))
        return read_page(self, token)

    monkeypatch.setattr(watch_module.Reflector, "_list_page", counting)
    cache = make_cache(page_size=7)
    assert cache.wait_synced(PATIENCE)
    assert cache.size == 20
    assert len(alive_at_page) == 3
    assert max(alive_at_page) <= 7  # one page of raw JSON at most, not the whole list


def test_the_cycle_collector_is_paused_while_a_page_is_decoded_and_never_across_a_read(
    apiserver: ApiServer, make_cache: CacheFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 15, workload 3: the collector walked each page's fresh containers and
    # freed none (40 % of the list's CPU). Off while a page is decoded and
    # snapshotted; on while waiting for the network, and after the list.
    apiserver.seed(*(service(f"gc-{i}", "apps") for i in range(20)))
    from dyntoolset.kube import watch as watch_module

    while_reading: list[bool] = []
    while_snapshotting: list[bool] = []
    read_page = watch_module.Reflector._list_page
    snapshot = ServiceCache._snapshot

    def reading(self: Any, token: str | None) -> bytes:
        while_reading.append(gc.isenabled())
        return read_page(self, token)

    def snapshotting(self: ServiceCache, obj: dict[str, Any]) -> Any:
        while_snapshotting.append(gc.isenabled())
        return snapshot(self, obj)

    monkeypatch.setattr(watch_module.Reflector, "_list_page", reading)
    monkeypatch.setattr(ServiceCache, "_snapshot", snapshotting)
    assert gc.isenabled()
    cache = make_cache(page_size=7)
    assert cache.wait_synced(PATIENCE)
    assert cache.size == 20
    assert while_reading == [True, True, True]
    assert while_snapshotting == [False] * 20
    assert gc.isenabled()


def test_a_status_only_change_does_not_notify(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    apiserver.seed(service("lb"))
    changes = Recorder()
    cache = make_cache(on_change=changes)
    assert cache.wait_synced(PATIENCE)
    wait_for(lambda: watches(apiserver))

    def status(obj: dict[str, Any]) -> None:
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}

    apiserver.modify("services", "default", "lb", status)
    apiserver.create(service("after"))  # a real change, as a marker
    wait_for(lambda: "default/after" in names(cache))
    assert changes.calls == ["synced", "service"]
    assert cache.services()[1].resource_version == str(
        apiserver.get("services", "default", "lb")["metadata"]["resourceVersion"]
    )


@pytest.mark.apiserver(bookmark_interval=60)
def test_410_mid_stream_relists_exactly_once_and_drops_vanished(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    apiserver.seed(service("stays"), service("goes"))
    # The watch delivers one event, then an in-stream 410: the deletion after it never arrives.
    expired = apiserver.gone(verb="watch", after_events=1, times=1)
    changes = Recorder()
    cache = make_cache(on_change=changes)
    assert cache.wait_synced(PATIENCE)
    wait_for(lambda: watches(apiserver))
    apiserver.create(service("added"))
    apiserver.delete("services", "default", "goes")
    wait_for(lambda: cache.relists == 2, what="the relist")
    assert expired.fired == 1
    assert names(cache) == ["default/added", "default/stays"]
    assert cache.synced and changes.calls == ["synced", "service", "synced"]
    wait_for(lambda: len(watches(apiserver)) == 2, what="the watch after the relist")
    assert apiserver.count(verb="list", resource="services") == 2


def test_unsynced_while_the_relist_fails(apiserver: ApiServer, make_cache: CacheFactory) -> None:
    apiserver.seed(service("one"))
    cache = make_cache()
    assert cache.wait_synced(PATIENCE)
    wait_for(lambda: apiserver.active_watches)
    failing = apiserver.fail(500, verb="list", resource="services")
    apiserver.expire_watches()
    wait_for(lambda: failing.fired >= 2, what="failed relists")
    assert not cache.synced  # unknown is not empty: the old snapshot is not trusted
    failing.remove()
    assert cache.wait_synced(PATIENCE)
    assert names(cache) == ["default/one"]


def test_410_on_a_continue_token_restarts_the_list(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    apiserver.seed(*(service(f"svc-{i}") for i in range(5)))
    apiserver.gone(verb="list", when=lambda info: "continue" in info.query, times=1)
    cache = make_cache(page_size=2)
    assert cache.wait_synced(PATIENCE)
    assert cache.size == 5
    lists = apiserver.find_requests(verb="list", resource="services")
    assert [(bool(r.query.get("continue")), r.status) for r in lists] == [
        (False, 200),
        (True, 410),
        (False, 200),
        (True, 200),
        (True, 200),
    ]
    assert cache.relists == 1


def test_500_then_429_backs_off_honouring_retry_after(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    apiserver.seed(service("one"))
    apiserver.fail(500, verb="list", resource="services", times=1)
    apiserver.fail(429, retry_after=1, verb="list", resource="services", times=1)
    backoff = RecordingBackoff(0.01, 0.2)
    cache = make_cache(backoff=lambda: backoff)
    assert cache.wait_synced(PATIENCE)
    assert apiserver.count(verb="list", resource="services") == 3
    first, second = backoff.delays
    assert first <= 0.2  # capped (and jittered: at most the nominal delay)
    assert second >= 1.0  # the server's Retry-After is a floor


def test_persistent_errors_never_become_a_hot_loop(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    apiserver.fail(503, verb="list", resource="services")
    backoff = RecordingBackoff(0.8, 30.0)
    cache = make_cache(backoff=lambda: backoff)
    wait_for(lambda: apiserver.count(verb="list", resource="services"), what="the first list")
    time.sleep(1.5)  # the time that passes, not an assertion
    assert not cache.synced
    calls = apiserver.count(verb="list", resource="services")
    # Delays of at least 0.4, 0.8, 1.6 s: three calls in 1.5 s, four if the sleep overruns
    # on a loaded machine; a hot loop would make thousands.
    assert calls <= 5
    assert all(b >= a / 2 for a, b in zip(backoff.delays, backoff.delays[1:], strict=False))


def test_a_stream_dropped_mid_chunk_resumes_from_the_last_version(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    dropped = apiserver.drop(verb="watch", after_events=1, times=1)
    cache = make_cache()
    assert cache.wait_synced(PATIENCE)
    wait_for(lambda: watches(apiserver))
    first = apiserver.create(service("first"))
    wait_for(lambda: dropped.fired and len(watches(apiserver)) >= 2, what="the reconnect")
    apiserver.create(service("second"))
    wait_for(lambda: "default/second" in names(cache), what="the resumed watch")
    assert names(cache) == ["default/first", "default/second"]
    assert cache.relists == 1  # resumed, not relisted
    assert watches(apiserver)[1].query["resourceVersion"] == first["metadata"]["resourceVersion"]


@pytest.mark.apiserver(bookmark_interval=60)
def test_a_silent_server_is_a_read_timeout_then_a_reconnect(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    silent = apiserver.stall(3, verb="watch", after_events=0, times=1)
    cache = make_cache(timeouts=attrs.evolve(FAST, watch_read=0.3))
    assert cache.wait_synced(PATIENCE)
    wait_for(lambda: silent.fired and len(watches(apiserver)) >= 2, what="the reconnect")
    apiserver.create(service("later"))
    wait_for(lambda: "default/later" in names(cache))
    assert cache.relists == 1
    assert cache.reflectors[0].last_failure is not None
    assert cache.reflectors[0].last_failure.error_type == "timeout"


def test_a_stream_that_ends_without_events_is_reopened(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    cache = make_cache(timeouts=attrs.evolve(FAST, watch_seconds=1))
    assert cache.wait_synced(PATIENCE)
    wait_for(lambda: len(watches(apiserver)) >= 3, what="three watches")
    apiserver.create(service("late"))
    wait_for(lambda: "default/late" in names(cache))
    assert cache.relists == 1 and cache.reflectors[0].failures == 0


@pytest.mark.apiserver(bookmark_interval=0.05)
def test_bookmarks_advance_the_resource_version(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    cache = make_cache(timeouts=attrs.evolve(FAST, watch_seconds=1))
    assert cache.wait_synced(PATIENCE)
    listed = int(cache.reflectors[0].resource_version or 0)
    # Other resources move the global version; only bookmarks tell the Service watch.
    apiserver.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    moved = apiserver.resource_version
    wait_for(lambda: int(cache.reflectors[0].resource_version or 0) >= moved, what="a bookmark")
    assert moved > listed and cache.size == 0
    wait_for(
        lambda: any(int(w.query["resourceVersion"]) >= moved for w in watches(apiserver)),
        what="a watch from the bookmarked version",
    )


def test_first_list_failure_leaves_the_cache_unsynced(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    apiserver.seed(service("one"))
    failing = apiserver.fail(500, verb="list", resource="services")
    cache = make_cache()
    wait_for(lambda: failing.fired >= 2)
    assert not cache.synced and not cache.wait_synced(0.05) and cache.services() == []
    failing.remove()
    assert cache.wait_synced(PATIENCE) and cache.size == 1


def test_namespace_scope_lists_and_watches_each_namespace(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    apiserver.seed(service("a1", "a"), service("b1", "b"), service("c1", "c"))
    cache = make_cache(namespaces=["b", "a"])
    assert cache.wait_synced(PATIENCE)
    assert names(cache) == ["a/a1", "b/b1"]
    assert {r.namespace for r in apiserver.find_requests(verb="list", resource="services")} == {
        "a",
        "b",
    }
    wait_for(lambda: len(watches(apiserver)) == 2)
    apiserver.create(service("c2", "c"))
    apiserver.create(service("b2", "b"))
    wait_for(lambda: "b/b2" in names(cache))
    assert names(cache) == ["a/a1", "b/b1", "b/b2"]
    # What a reconcile discovers over: every partition, keyed as discovery keys.
    apiserver.delete("services", "a", "a1")
    wait_for(lambda: "a/a1" not in names(cache))
    by_key = cache.by_key()
    assert sorted(by_key) == ["b/b1", "b/b2"]
    assert all(by_key[s.key] is s for s in cache.services())


def test_a_service_that_fails_the_snapshot_is_left_out_and_logged_once(
    apiserver: ApiServer,
    make_cache: CacheFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The emulator refuses what the snapshot refuses, as a real API server does; a
    # newer server's field the snapshot does not know could still fail it. So the
    # failure is injected at the snapshot boundary, for the Service named "odd".
    from dyntoolset.kube import services as services_module
    from dyntoolset.snapshot import SnapshotError, service_from_object

    def snapshot(obj: dict[str, Any]) -> Any:
        if obj["metadata"]["name"] == "odd":
            raise SnapshotError("spec.ports[0].name must be a string, got 5")
        return service_from_object(obj)

    monkeypatch.setattr(services_module, "service_from_object", snapshot)
    apiserver.seed(service("odd"), service("fine"))
    caplog.set_level(logging.WARNING, logger="dyntoolset.kube.services")
    cache = make_cache()
    assert cache.wait_synced(PATIENCE)
    assert names(cache) == ["default/fine"]

    def relabel(obj: dict[str, Any]) -> None:
        obj["metadata"]["labels"] = {"still": "bad"}

    apiserver.modify("services", "default", "odd", relabel)
    apiserver.create(service("marker"))
    wait_for(lambda: "default/marker" in names(cache))
    warnings = [r for r in caplog.records if "default/odd left out" in r.getMessage()]
    assert len(warnings) == 1 and "spec.ports[0].name" in warnings[0].getMessage()


def test_namespace_scope_from_the_configuration() -> None:
    plugins = load_plugins()

    def scope(text: str) -> tuple[str, ...] | None:
        raw, problems = parse_config(text)
        assert raw is not None and not problems
        config, more = resolve_config(raw, plugins, "test")
        assert config is not None and not more
        return namespace_scope(config)

    assert scope("{}") is None  # the defaults look everywhere
    finite = "\n".join(
        f"  {name}: {{namespaces: [monitoring, tracing, '!tracing']}}"
        for name in sorted(plugins.detectors)  # every installed detector, plugins included
    )
    assert scope("detectors:\n" + finite) == ("monitoring",)
    mixed = finite.replace(
        "custom: {namespaces: [monitoring, tracing, '!tracing']}", "custom: {namespaces: [team-*]}"
    )
    assert scope("detectors:\n" + mixed) is None
    disabled = finite.replace(
        "custom: {namespaces: [monitoring, tracing, '!tracing']}", "custom: {enabled: false}"
    )
    assert scope("detectors:\n" + disabled) == ("monitoring",)


def test_a_scope_of_no_namespace_is_known_empty(
    apiserver: ApiServer, make_cache: CacheFactory
) -> None:
    apiserver.seed(service("a1", "a"))
    cache = make_cache(namespaces=[])
    assert cache.synced and cache.services() == []
    assert apiserver.count(resource="services") == 0
