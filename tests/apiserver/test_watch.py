"""Watch: ordered events from a resourceVersion, bookmarks, 410 Expired, timeouts, selectors."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiServer

from .conftest import configmap, service

# Watches without timeoutSeconds end after this long (the real server's default is
# 30-60 minutes): replays in these tests finish quickly and completely.
pytestmark = pytest.mark.apiserver(watch_timeout=0.3)


def raw_events(v1: client.CoreV1Api, **kwargs: Any) -> list[dict[str, Any]]:
    """Watch configmaps without model deserialization, as the controller does."""
    response = v1.list_config_map_for_all_namespaces(
        watch=True, _preload_content=False, _request_timeout=(2, 5), **kwargs
    )
    try:
        events = []
        buffer = b""
        for chunk in response.stream(amt=None, decode_content=False):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                events.append(json.loads(line))
        assert buffer == b""
        return events
    finally:
        response.release_conn()


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["type"], e["object"].get("metadata", {}).get("name")) for e in events]


def test_watch_from_resource_version_replays_in_order(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(configmap("before"))
    start = v1.list_config_map_for_all_namespaces().metadata.resource_version
    apiserver.create(configmap("a"))
    apiserver.modify("configmaps", "default", "a", lambda cm: cm.update(data={"k": "v"}))
    apiserver.create(service("ignored"))  # another resource: not in this watch
    apiserver.delete("configmaps", "default", "a")
    events = raw_events(v1, resource_version=start)
    assert summary(events) == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and int(start) < versions[0]
    assert events[1]["object"]["data"] == {"k": "v"}


def test_watch_stream_deserializes_models(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    start = str(apiserver.resource_version)
    apiserver.create(configmap("a", data={"x": "1"}))
    apiserver.delete("configmaps", "default", "a")
    w = watch.Watch()
    events = []
    for event in w.stream(
        v1.list_namespaced_config_map, "default", resource_version=start, _request_timeout=(2, 5)
    ):
        events.append(event)
        if len(events) == 2:
            w.stop()
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "a"),
        ("DELETED", "a"),
    ]
    assert isinstance(events[0]["object"], client.V1ConfigMap)
    assert events[0]["object"].data == {"x": "1"}
    assert w.resource_version == events[-1]["object"].metadata.resource_version


def test_watch_without_resource_version_starts_with_current_state(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(configmap("b"))
    apiserver.create(configmap("a"))
    apiserver.delete("configmaps", "default", "b")
    assert summary(raw_events(v1)) == [("ADDED", "a")]
    assert summary(raw_events(v1, resource_version="0")) == [("ADDED", "a")]


def test_live_events_reach_a_running_watch(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("a"))
    seen = []
    w = watch.Watch()
    for event in w.stream(
        v1.list_namespaced_config_map, "default", timeout_seconds=5, _request_timeout=(2, 10)
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 1:
            v1.create_namespaced_config_map("default", configmap("b"))
        elif len(seen) == 2:
            v1.patch_namespaced_config_map("a", "default", {"data": {"n": "1"}})
        elif len(seen) == 3:
            v1.delete_namespaced_config_map("b", "default")
        else:
            w.stop()
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]


def test_namespaced_watch_sees_only_its_namespace(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    start = str(apiserver.resource_version)
    apiserver.create(configmap("a", "one"))
    apiserver.create(configmap("b", "two"))
    response = v1.list_namespaced_config_map(
        "two", watch=True, resource_version=start, _preload_content=False
    )
    lines = [json.loads(line) for line in response.data.splitlines()]
    assert summary(lines) == [("ADDED", "b")]


def test_label_selector_transitions_become_added_and_deleted(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(configmap("a", labels={"app": "x"}))
    start = str(apiserver.resource_version)
    set_label = lambda value: lambda cm: cm["metadata"]["labels"].update(app=value)  # noqa: E731
    apiserver.modify("configmaps", "default", "a", set_label("y"))
    apiserver.modify("configmaps", "default", "a", set_label("x"))
    apiserver.modify("configmaps", "default", "a", lambda cm: cm.update(data={"k": "v"}))
    events = raw_events(v1, resource_version=start, label_selector="app=x")
    assert summary(events) == [("DELETED", "a"), ("ADDED", "a"), ("MODIFIED", "a")]
    # The DELETED carries the last matching state, at the version that made it leave.
    assert events[0]["object"]["metadata"]["labels"] == {"app": "x"}
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) == int(start) + 1


def test_field_selector_on_watch(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    start = str(apiserver.resource_version)
    apiserver.create(configmap("a"))
    apiserver.create(configmap("b"))
    events = raw_events(v1, resource_version=start, field_selector="metadata.name=b")
    assert summary(events) == [("ADDED", "b")]


@pytest.mark.apiserver(bookmark_interval=0.05)
def test_bookmarks_only_when_allowed(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("a"))
    quiet = raw_events(v1)
    assert [e["type"] for e in quiet] == ["ADDED"]
    chatty = raw_events(v1, allow_watch_bookmarks=True)
    bookmarks = [e for e in chatty if e["type"] == "BOOKMARK"]
    assert len(bookmarks) >= 3
    assert bookmarks[0]["object"] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(apiserver.resource_version)},
    }


@pytest.mark.apiserver(bookmark_interval=0.1)
def test_bookmarks_advance_past_other_resources_writes(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    w = watch.Watch()
    stream = w.stream(
        v1.list_namespaced_config_map,
        "default",
        allow_watch_bookmarks=True,
        resource_version=str(apiserver.resource_version),
        timeout_seconds=3,
    )
    first = next(stream)
    assert first["type"] == "BOOKMARK"
    before = int(w.resource_version)
    apiserver.create(service("elsewhere"))  # a write the configmap watch does not show
    second = next(stream)
    assert second["type"] == "BOOKMARK"
    assert int(w.resource_version) == before + 1 == apiserver.resource_version
    w.stop()
    stream.close()


def test_send_bookmarks_on_demand(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    w = watch.Watch()
    stream = w.stream(
        v1.list_namespaced_config_map,
        "default",
        allow_watch_bookmarks=True,
        resource_version=str(apiserver.resource_version),
        timeout_seconds=3,
    )
    apiserver.create(configmap("a"))
    assert next(stream)["type"] == "ADDED"
    apiserver.send_bookmarks()
    assert next(stream)["type"] == "BOOKMARK"
    w.stop()
    stream.close()


@pytest.mark.apiserver(history_limit=2)
def test_too_old_resource_version_is_in_stream_410(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    start = str(apiserver.resource_version)
    for name in ("a", "b", "c"):
        apiserver.create(configmap(name))
    events = raw_events(v1, resource_version=start)
    assert [e["type"] for e in events] == ["ERROR"]
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {start} (")
    # Still inside the window: fine.
    inside = raw_events(v1, resource_version=str(int(start) + 1))
    assert summary(inside) == [("ADDED", "b"), ("ADDED", "c")]


@pytest.mark.apiserver(history_limit=2)
def test_watch_stream_raises_410_after_its_single_retry(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    start = str(apiserver.resource_version)
    for name in ("a", "b", "c"):
        apiserver.create(configmap(name))
    with pytest.raises(ApiException) as caught:
        list(
            watch.Watch().stream(
                v1.list_namespaced_config_map,
                "default",
                resource_version=start,
                _request_timeout=(2, 5),
            )
        )
    assert caught.value.status == 410
    assert apiserver.count(verb="watch", resource="configmaps") == 2


def test_compaction_expires_old_versions(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    start = str(apiserver.resource_version)
    apiserver.create(configmap("a"))
    apiserver.compact()
    assert [e["type"] for e in raw_events(v1, resource_version=start)] == ["ERROR"]
    current = str(apiserver.resource_version)
    assert raw_events(v1, resource_version=current) == []


def test_expire_watches_ends_running_watch_with_410(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(configmap("a"))
    response = v1.list_namespaced_config_map(
        "default", watch=True, _preload_content=False, timeout_seconds=5, _request_timeout=(2, 5)
    )
    lines = response.stream(amt=None)
    first = json.loads(next(lines))
    assert first["type"] == "ADDED"
    apiserver.expire_watches()
    rest = [json.loads(line) for chunk in lines for line in chunk.splitlines()]
    assert [e["type"] for e in rest] == ["ERROR"] and rest[0]["object"]["code"] == 410
    response.release_conn()


def test_timeout_seconds_is_honoured(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    began = time.monotonic()
    assert raw_events(v1, resource_version=str(apiserver.resource_version), timeout_seconds=1) == []
    # Not the fixture's 0.3 s default: the server waited for timeoutSeconds. The
    # other side needs no clock: a watch left open past it would end in the
    # client's 5 s read timeout (ReadTimeoutError) instead of an empty list.
    assert time.monotonic() - began >= 0.9
    deadline = time.monotonic() + 20  # the server thread finishes just after the last chunk
    while apiserver.active_watches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert apiserver.active_watches == 0


def test_stopping_the_server_ends_watches() -> None:
    server = ApiServer().start()
    v1 = client.CoreV1Api(server.new_api_client())
    response = v1.list_namespaced_config_map(
        "default", watch=True, _preload_content=False, _request_timeout=(2, 5)
    )
    port = server.port
    server.stop()
    # stop() returns only once every connection thread has ended, the watch's included.
    prefix = f"apiserver-emulator:{port}"
    assert [t.name for t in threading.enumerate() if t.name.startswith(prefix)] == []
    # The chunked stream is cut without its terminating chunk, which urllib3
    # reports as a ProtocolError. A watch the stop left open would instead end
    # in a ReadTimeoutError after the 5 s read timeout, and one ended cleanly
    # would raise nothing: both fail here, with no clock involved.
    with pytest.raises(
        urllib3.exceptions.ProtocolError, match=r"ended prematurely|Connection broken"
    ):
        for _ in response.stream(amt=None):
            pass


def test_a_watch_whose_client_hangs_up_is_released(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    response = v1.list_namespaced_config_map(
        "default", watch=True, timeout_seconds=60, _preload_content=False
    )
    deadline = time.monotonic() + 20
    while apiserver.active_watches != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert apiserver.active_watches == 1
    response.close()  # closes the socket; the server notices within half a second
    deadline = time.monotonic() + 20
    while apiserver.active_watches and time.monotonic() < deadline:
        time.sleep(0.02)
    assert apiserver.active_watches == 0


def test_timeout_seconds_zero_means_the_default(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    # Upstream: a timeoutSeconds of 0 is "unset" (the server's own, long timeout),
    # not "end now"; a client passing 0 must not get a stream that ends at once.
    response = v1.list_config_map_for_all_namespaces(
        watch=True,
        timeout_seconds=0,
        resource_version=str(apiserver.resource_version),
        _preload_content=False,
        _request_timeout=(2, 5),
    )
    try:
        threading.Timer(0.2, lambda: apiserver.create(configmap("later"))).start()
        line = next(iter(response.stream(amt=None, decode_content=False)))
        event = json.loads(line.split(b"\n", 1)[0])
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "later")
    finally:
        response.close()
        response.release_conn()
