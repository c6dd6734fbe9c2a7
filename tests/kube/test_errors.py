"""API errors as outcomes (through the real client against the emulator) and the backoff."""

from __future__ import annotations

import random

import pytest
import urllib3
from kubernetes import client

from dyntoolset.kube.errors import MAX_RETRY_AFTER, ApiFailure, Backoff, RbacRule, classify
from dyntoolset.testing.apiserver import ApiServer

#: What a call of the client raises: an answer it did not like, or no answer at all.
CLIENT_ERRORS = (client.ApiException, urllib3.exceptions.HTTPError)


def failure_of(apiserver: ApiServer, **call: str) -> ApiFailure:
    v1 = client.CoreV1Api(apiserver.api_client)
    with pytest.raises(CLIENT_ERRORS) as caught:
        v1.read_namespaced_config_map("cm", "ops", _request_timeout=(2, 5))
    return classify(caught.value, verb="get", resource="configmaps", namespace="ops", name="cm")


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(500, "server_error"), (502, "server_error"), (503, "server_error"), (504, "server_error")],
)
def test_server_errors_are_temporary(apiserver: ApiServer, status: int, error_type: str) -> None:
    apiserver.fail(status, verb="get", resource="configmaps")
    failure = failure_of(apiserver)
    assert failure.temporary and failure.status == status and failure.error_type == error_type
    assert failure.rbac_hint is None and failure.retry_after is None


def test_429_carries_retry_after(apiserver: ApiServer) -> None:
    apiserver.fail(429, retry_after=3, reason="TooManyRequests", verb="get")
    failure = failure_of(apiserver)
    assert failure.temporary and failure.retry_after == 3.0
    assert failure.reason == "TooManyRequests" and failure.error_type == "too_many_requests"


def test_an_absurd_retry_after_is_capped(apiserver: ApiServer) -> None:
    apiserver.fail(429, retry_after=86400, verb="get")
    assert failure_of(apiserver).retry_after == MAX_RETRY_AFTER


@pytest.mark.parametrize(
    ("status", "error_type"), [(400, "bad_request"), (422, "invalid"), (401, "unauthorized")]
)
def test_client_errors_are_permanent(apiserver: ApiServer, status: int, error_type: str) -> None:
    apiserver.fail(status, message="nope", verb="get")
    failure = failure_of(apiserver)
    assert not failure.temporary and failure.error_type == error_type
    assert "nope" in failure.message and failure.retry_after is None


def test_403_names_the_rbac_rule_to_add(apiserver: ApiServer) -> None:
    apiserver.fail(403, reason="Forbidden", message="cannot get configmaps", verb="get")
    failure = failure_of(apiserver)
    assert not failure.temporary and failure.error_type == "forbidden"
    assert failure.rbac_hint == RbacRule("get", "configmaps", "ops", "cm")
    text = str(failure)
    assert "verbs: [get]" in text and "resources: [configmaps]" in text
    assert "resourceNames: [cm]" in text and "in namespace ops" in text


def test_a_cluster_wide_rule_says_so() -> None:
    assert "cluster-wide" in str(RbacRule("list", "services"))


def test_connection_refused_is_temporary_with_no_status() -> None:
    config = client.Configuration(host="http://127.0.0.1:9")  # discard port: nothing listens
    config.retries = False
    with client.ApiClient(config) as api, pytest.raises(CLIENT_ERRORS) as caught:
        client.CoreV1Api(api).list_namespace(_request_timeout=(2, 2))
    failure = classify(caught.value, verb="list", resource="namespaces")
    assert failure.temporary and failure.status == 0 and failure.error_type == "connection"


def test_a_timeout_is_temporary(apiserver: ApiServer) -> None:
    apiserver.stall(5, verb="get")
    v1 = client.CoreV1Api(apiserver.api_client)
    with pytest.raises(CLIENT_ERRORS) as caught:
        v1.read_namespaced_config_map("cm", "ops", _request_timeout=(2, 0.2))
    failure = classify(caught.value, verb="get", resource="configmaps")
    assert failure.temporary and failure.error_type == "timeout"


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(0.8, 30.0, rng=random.Random(1))
    delays = [backoff.delay() for _ in range(10)]
    for retry, delay in enumerate(delays):
        nominal = min(30.0, 0.8 * 2**retry)
        assert nominal / 2 <= delay <= nominal
    assert max(delays) <= 30.0
    assert len(set(delays)) == len(delays)  # jittered, not a fixed sequence


def test_retry_after_is_a_floor() -> None:
    backoff = Backoff(0.8, 30.0, rng=random.Random(1))
    assert backoff.delay(retry_after=5.0) == 5.0
    assert backoff.delay(retry_after=0.0) <= 1.6


def test_backoff_resets_after_a_healthy_period_only() -> None:
    now = [0.0]
    backoff = Backoff(1.0, 30.0, reset_after=60.0, rng=random.Random(1), clock=lambda: now[0])
    for _ in range(4):
        backoff.delay()
    backoff.healthy()
    now[0] += 10.0  # healthy, but not for long: the streak goes on
    assert backoff.delay() >= 8.0
    backoff.healthy()
    now[0] += 61.0
    assert backoff.delay() <= 1.0  # healthy long enough: from the start
    backoff.delay()
    backoff.reset()
    assert backoff.failures == 0
