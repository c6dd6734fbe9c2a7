"""Fault injection (status, drop, stall, 410, latency) and the request log."""

from __future__ import annotations

import json
import time

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiServer

from .conftest import configmap, service

pytestmark = pytest.mark.apiserver(watch_timeout=2)


def test_status_fault_n_times_with_retry_after(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    fault = apiserver.fail(503, verb="list", resource="services", times=2, retry_after=3)
    for _ in range(2):
        with pytest.raises(ApiException) as caught:
            v1.list_service_for_all_namespaces()
        assert caught.value.status == 503
        assert caught.value.headers["Retry-After"] == "3"
        body = json.loads(caught.value.body)
        assert body["kind"] == "Status" and body["code"] == 503
        assert body["details"] == {"retryAfterSeconds": 3}
    assert v1.list_service_for_all_namespaces().items == []
    assert fault.fired == 2 and fault.exhausted
    assert [r.status for r in apiserver.find_requests(verb="list")] == [503, 503, 200]
    assert [r.fault for r in apiserver.find_requests(verb="list")] == ["status", "status", None]


def test_429_is_too_many_requests(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.fail(429, retry_after=1, times=1)
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_config_map("default")
    assert caught.value.status == 429
    assert json.loads(caught.value.body)["reason"] == "TooManyRequests"


def test_probability_is_seeded_and_counted(apiserver_factory: object) -> None:
    outcomes = []
    for _ in range(2):
        server = apiserver_factory(seed=7)  # type: ignore[operator]
        fault = server.fail(500, verb="get", probability=0.3)
        v1 = client.CoreV1Api(server.api_client)
        server.create(configmap("a"))
        statuses = []
        for _ in range(40):
            try:
                v1.read_namespaced_config_map("a", "default")
                statuses.append(200)
            except ApiException as exc:
                statuses.append(exc.status)
        assert 0 < statuses.count(500) < 40
        assert statuses.count(500) == fault.fired
        outcomes.append(statuses)
    assert outcomes[0] == outcomes[1]


def test_faults_match_only_their_route(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("a", "one"))
    apiserver.create(service("s", "one"))
    apiserver.fail(500, resource="configmaps", namespace="two")
    apiserver.fail(502, method="PUT", path=r"/configmaps/a$")
    apiserver.fail(504, when=lambda info: info.query.get("labelSelector") == "boom")
    assert v1.read_namespaced_config_map("a", "one").metadata.name == "a"
    assert v1.list_namespaced_service("two").items == []
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_config_map("two")
    assert caught.value.status == 500
    with pytest.raises(ApiException) as caught:
        v1.replace_namespaced_config_map("a", "one", configmap("a", "one"))
    assert caught.value.status == 502
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_service("one", label_selector="boom")
    assert caught.value.status == 504


def test_removed_fault_stops_firing(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    fault = apiserver.fail(500)
    with pytest.raises(ApiException):
        v1.list_namespaced_config_map("default")
    fault.remove()
    assert v1.list_namespaced_config_map("default").items == []
    with pytest.raises(TypeError):
        apiserver.fail(500, verbs="list")


def test_drop_mid_body(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("a", data={"k": "v" * 1000}))
    apiserver.drop(verb="list", times=1)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        v1.list_namespaced_config_map("default", _request_timeout=(1, 2))
    assert [i.metadata.name for i in v1.list_namespaced_config_map("default").items] == ["a"]
    assert apiserver.find_requests(verb="list")[0].fault == "drop"


def test_drop_mid_watch_after_events(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("a"))
    apiserver.create(configmap("b"))
    apiserver.drop(verb="watch", after_events=1, times=1)
    seen = []
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for event in watch.Watch().stream(
            v1.list_namespaced_config_map, "default", _request_timeout=(1, 2)
        ):
            seen.append(event["object"].metadata.name)
    assert seen == ["a"]


def test_stall_without_bytes_hits_the_read_timeout(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.stall(60, verb="list", times=1)
    began = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        v1.list_namespaced_config_map("default", _request_timeout=(1, 0.3))
    assert time.monotonic() - began < 30  # the 0.3 s read timeout, not the 60 s stall
    assert v1.list_namespaced_config_map("default", _request_timeout=(1, 1)).items == []


def test_stall_mid_watch(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("a"))
    apiserver.stall(5, verb="watch", after_events=1)
    seen = []
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        for event in watch.Watch().stream(
            v1.list_namespaced_config_map, "default", _request_timeout=(1, 0.3)
        ):
            seen.append(event["type"])
    assert seen == ["ADDED"]


def test_gone_injected_into_a_running_watch(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("a"))
    apiserver.create(configmap("b"))
    apiserver.gone(verb="watch", after_events=1, times=1)
    response = v1.list_namespaced_config_map(
        "default", watch=True, _preload_content=False, _request_timeout=(1, 3)
    )
    events = [json.loads(line) for line in response.data.splitlines()]
    assert [e["type"] for e in events] == ["ADDED", "ERROR"]
    assert events[1]["object"]["code"] == 410 and events[1]["object"]["reason"] == "Expired"


def test_watch_stream_resumes_once_after_injected_410(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(configmap("a"))
    start = str(apiserver.resource_version)
    apiserver.create(configmap("b"))
    apiserver.gone(verb="watch", after_events=0, times=1)
    w = watch.Watch()
    seen = []
    for event in w.stream(
        v1.list_namespaced_config_map, "default", resource_version=start, _request_timeout=(1, 3)
    ):
        seen.append(event["object"].metadata.name)
        w.stop()
    assert seen == ["b"]
    watches = apiserver.find_requests(verb="watch")
    assert len(watches) == 2 and watches[1].query["resourceVersion"] == start


def test_gone_on_a_list(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.gone(verb="list", when=lambda info: "continue" in info.query)
    first = v1.list_namespaced_config_map("default", limit=1)
    assert first.items == []
    apiserver.create(configmap("a"))
    apiserver.create(configmap("b"))
    page = v1.list_namespaced_config_map("default", limit=1)
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_config_map("default", limit=1, _continue=page.metadata._continue)
    assert caught.value.status == 410


def test_latency(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.delay(0.3, verb="list")
    apiserver.fail(500, verb="list", times=1)  # latency combines with another fault
    began = time.monotonic()
    with pytest.raises(ApiException):
        v1.list_namespaced_config_map("default")
    v1.list_namespaced_config_map("default")
    assert time.monotonic() - began >= 0.6
    began = time.monotonic()
    v1.list_namespace()
    assert apiserver.count(verb="list") == 3


def test_request_log_records_method_path_query_status_body(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ops"}})
    v1.create_namespaced_config_map("ops", configmap("toolsets", "ops", data={"a": "1"}))
    v1.list_namespaced_config_map("ops", label_selector="x=y", limit=5)
    with pytest.raises(ApiException):
        v1.read_namespaced_config_map("missing", "ops")
    v1.patch_namespaced_config_map("toolsets", "ops", {"data": {"b": "2"}})
    first, second, third, fourth = apiserver.requests
    assert (first.method, first.path, first.status, first.verb) == (
        "POST",
        "/api/v1/namespaces/ops/configmaps",
        201,
        "create",
    )
    assert first.body["data"] == {"a": "1"}
    assert second.query == {"labelSelector": "x=y", "limit": "5"}
    assert (third.status, third.name) == (404, "missing")
    assert fourth.body == {"data": {"b": "2"}}
    writes = apiserver.writes("configmaps")
    assert [(w.verb, w.name) for w in writes] == [("create", "toolsets"), ("patch", "toolsets")]
    assert apiserver.count(resource="configmaps", namespace="ops") == 4
    assert apiserver.counters[("get", "configmaps", 404)] == 1
    assert apiserver.counters[("create", "configmaps", 201)] == 1
    apiserver.clear_requests()
    assert apiserver.requests == []


def test_drop_applies_to_proxy_and_errors_too(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.drop(verb="get", times=1)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        v1.read_namespaced_config_map("missing", "default", _request_timeout=(1, 2))
    apiserver.create(service("s"))
    apiserver.drop(verb="proxy", times=1)
    with pytest.raises(urllib3.exceptions.ProtocolError):
        v1.connect_get_namespaced_service_proxy_with_path(
            "s:80", "default", "x", _request_timeout=(1, 2)
        )
    assert [r.status for r in apiserver.find_requests(fault="drop")] == [404, 503]


def test_skip_lets_the_first_matches_through(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    fault = apiserver.fail(500, verb="list", skip=2, times=1)
    statuses = []
    for _ in range(4):
        try:
            v1.list_namespaced_config_map("default")
            statuses.append(200)
        except ApiException as exc:
            statuses.append(exc.status)
    assert statuses == [200, 200, 500, 200]
    assert (fault.seen, fault.fired) == (3, 1)


def test_resume_after_a_dropped_watch_loses_nothing(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    start = str(apiserver.resource_version)
    for name in ("a", "b", "c"):
        apiserver.create(configmap(name))
    apiserver.drop(verb="watch", after_events=1, times=1)
    w = watch.Watch()
    seen = []
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for event in w.stream(
            v1.list_namespaced_config_map,
            "default",
            resource_version=start,
            _request_timeout=(1, 2),
        ):
            seen.append(event["object"].metadata.name)
    for event in w.stream(
        v1.list_namespaced_config_map,
        "default",
        resource_version=w.resource_version,
        _request_timeout=(1, 2),
    ):
        seen.append(event["object"].metadata.name)
        if len(seen) == 3:
            w.stop()
    assert seen == ["a", "b", "c"]
