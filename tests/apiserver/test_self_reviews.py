"""SelfSubjectAccessReview and SelfSubjectReview through the official client."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiServer, TokenUser

ALICE = TokenUser("alice", uid="42", groups=("devs",), extra={"scopes": ("a", "b")})


def self_access(api_client: Any, spec: dict[str, Any]) -> Any:
    return client.AuthorizationV1Api(api_client).create_self_subject_access_review(
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec}
    )


def whoami(api_client: Any) -> Any:
    return client.AuthenticationV1Api(api_client).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    )


@pytest.mark.apiserver(tokens={"s3cret": ALICE, "other": "bob"})
def test_the_policy_decides_for_the_requesting_token_user(apiserver: ApiServer) -> None:
    seen: list[dict[str, Any]] = []

    def policy(spec: dict[str, Any]) -> tuple[bool, str]:
        seen.append(spec)
        return spec["user"] == "alice", f"decided for {spec['user']}"

    apiserver.access_policy = policy
    attributes = {"resourceAttributes": {"verb": "get", "resource": "services", "namespace": "x"}}
    review = self_access(apiserver.api_client, attributes)
    assert (review.status.allowed, review.status.reason) == (True, "decided for alice")
    assert review.spec.resource_attributes.resource == "services"
    assert seen[0] == {
        **attributes,
        "user": "alice",
        "groups": ["devs", "system:authenticated"],
        "uid": "42",
        "extra": {"scopes": ["a", "b"]},
    }
    bob = apiserver.new_api_client("other")
    try:
        review = self_access(bob, attributes)
    finally:
        bob.close()
    assert (review.status.allowed, review.status.reason) == (False, "decided for bob")
    assert seen[1]["groups"] == ["system:authenticated"]


def test_the_same_policy_answers_subject_access_reviews(apiserver: ApiServer) -> None:
    apiserver.access_policy = lambda spec: spec.get("user") == "system:anonymous"
    review = self_access(
        apiserver.api_client, {"nonResourceAttributes": {"path": "/x", "verb": "get"}}
    )
    assert review.status.allowed is True
    other = client.AuthorizationV1Api(apiserver.api_client).create_subject_access_review(
        {"spec": {"user": "mallory", "nonResourceAttributes": {"path": "/x", "verb": "get"}}}
    )
    assert other.status.allowed is False


def test_without_a_policy_everything_is_denied_with_a_reason(apiserver: ApiServer) -> None:
    review = self_access(apiserver.api_client, {"resourceAttributes": {"verb": "get"}})
    assert (review.status.allowed, review.status.reason) == (
        False,
        "no access policy is configured in the emulator",
    )


@pytest.mark.parametrize(
    ("spec", "cause"),
    [
        (
            {},
            (
                "spec.resourceAttributes",
                'Invalid value: "null": exactly one of nonResourceAttributes or '
                "resourceAttributes must be specified",
            ),
        ),
        (
            {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/x"}},
            (
                "spec.nonResourceAttributes",
                'Invalid value: {"path": "/x"}: cannot be specified in combination with '
                "resourceAttributes",
            ),
        ),
    ],
)
def test_a_review_needs_exactly_one_kind_of_attributes(
    apiserver: ApiServer, spec: dict[str, Any], cause: tuple[str, str]
) -> None:
    apiserver.access_policy = lambda spec: True
    with pytest.raises(ApiException) as caught:
        self_access(apiserver.api_client, spec)
    assert caught.value.status == 422
    body = json.loads(caught.value.body)
    assert body["message"].startswith(
        'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
    )
    assert [(c["field"], c["message"]) for c in body["details"]["causes"]] == [cause]


@pytest.mark.apiserver(tokens={"s3cret": ALICE})
def test_whoami_reports_the_token_user(apiserver: ApiServer) -> None:
    review = whoami(apiserver.api_client)
    info = review.status.user_info
    assert (info.username, info.uid, info.groups, info.extra) == (
        "alice",
        "42",
        ["devs", "system:authenticated"],
        {"scopes": ["a", "b"]},
    )
    assert apiserver.find_requests(resource="selfsubjectreviews")[0].user == "alice"


def test_whoami_without_tokens_is_anonymous(apiserver: ApiServer) -> None:
    info = whoami(apiserver.api_client).status.user_info
    assert (info.username, info.groups, info.uid) == (
        "system:anonymous",
        ["system:unauthenticated"],
        None,
    )


def test_reviews_are_discoverable_and_not_stored(apiserver: ApiServer) -> None:
    resources = client.AuthorizationV1Api(apiserver.api_client).get_api_resources()
    assert "selfsubjectaccessreviews" in [r.name for r in resources.resources]
    resources = client.AuthenticationV1Api(apiserver.api_client).get_api_resources()
    assert {"selfsubjectreviews", "tokenreviews"} <= {r.name for r in resources.resources}
    whoami(apiserver.api_client)
    connection = http.client.HTTPConnection("127.0.0.1", apiserver.port, timeout=30)
    try:
        connection.request("GET", "/apis/authentication.k8s.io/v1/selfsubjectreviews")
        assert connection.getresponse().status == 405
    finally:
        connection.close()
