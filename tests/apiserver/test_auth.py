"""Bearer-token authentication of callers, TokenReview and SubjectAccessReview answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiServer


@pytest.mark.apiserver(tokens={"s3cret": "controller"})
def test_requests_need_a_known_bearer_token(apiserver: ApiServer) -> None:
    ok = client.CoreV1Api(apiserver.api_client).list_namespaced_config_map("default")
    assert ok.items == []
    assert apiserver.requests[-1].user == "controller"
    for token in ("wrong", ""):
        api_client = apiserver.new_api_client(token=token)
        with pytest.raises(ApiException) as caught:
            client.CoreV1Api(api_client).list_namespaced_config_map("default")
        api_client.close()
        assert caught.value.status == 401
        assert json.loads(caught.value.body) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }


@pytest.mark.apiserver(tokens={"s3cret": "controller"})
@pytest.mark.parametrize(
    "header", ["Basic czNjcmV0", "Bearer", "bearer s3cret-not", "Bearer s3crét"]
)
def test_malformed_authorization_is_401(apiserver: ApiServer, header: str) -> None:
    pool = apiserver.api_client.rest_client.pool_manager
    response = pool.request(
        "GET", apiserver.url + "/api/v1/configmaps", headers={"Authorization": header}
    )
    assert response.status == 401


@pytest.mark.apiserver(tokens={"old": "controller"})
def test_token_rotation(apiserver: ApiServer) -> None:
    v1 = client.CoreV1Api(apiserver.api_client)  # sends "old"
    v1.list_namespaced_config_map("default")
    apiserver.tokens = {"new": "controller"}
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_config_map("default")
    assert caught.value.status == 401
    rotated = apiserver.new_api_client(token="new")
    assert client.CoreV1Api(rotated).list_namespaced_config_map("default").items == []
    rotated.close()
    assert [r.status for r in apiserver.find_requests(verb="list")] == [200, 401, 200]


def review(apiserver: ApiServer, token: str, audiences: list[str] | None = None) -> Any:
    spec: dict[str, Any] = {"token": token}
    if audiences is not None:
        spec["audiences"] = audiences
    api = client.AuthenticationV1Api(apiserver.api_client)
    return api.create_token_review({"spec": spec})


def test_token_review_answers_from_the_registry(apiserver: ApiServer) -> None:
    apiserver.add_token("abc", "system:serviceaccount:ops:agent", groups=["ops"], uid="u1")
    answer = review(apiserver, "abc")
    assert answer.status.authenticated is True
    assert answer.status.user.username == "system:serviceaccount:ops:agent"
    assert answer.status.user.groups == ["ops"]
    assert answer.status.user.uid == "u1"
    unknown = review(apiserver, "nope")
    assert unknown.status.authenticated is False
    assert unknown.status.error


def test_token_review_audiences(apiserver: ApiServer) -> None:
    apiserver.add_token("abc", "agent", audiences=["dyntoolset"])
    good = review(apiserver, "abc", ["dyntoolset", "other"])
    assert good.status.authenticated is True and good.status.audiences == ["dyntoolset"]
    bad = review(apiserver, "abc", ["kube-apiserver"])
    assert bad.status.authenticated is False
    apiserver.add_token("any", "agent")  # audiences None: whatever is asked
    assert review(apiserver, "any", ["x"]).status.audiences == ["x"]


def sar(apiserver: ApiServer, user: str, verb: str) -> Any:
    api = client.AuthorizationV1Api(apiserver.api_client)
    return api.create_subject_access_review(
        {
            "spec": {
                "user": user,
                "groups": ["g"],
                "resourceAttributes": {
                    "namespace": "ops",
                    "verb": verb,
                    "group": "",
                    "resource": "services",
                    "subresource": "proxy",
                    "name": "dyntoolset",
                },
            }
        }
    )


def test_subject_access_review_uses_the_policy(apiserver: ApiServer) -> None:
    assert sar(apiserver, "alice", "get").status.allowed is False  # no policy: deny
    seen: list[dict[str, Any]] = []

    def policy(spec: dict[str, Any]) -> tuple[bool, str]:
        seen.append(spec)
        allowed = spec["user"] == "alice" and spec["resourceAttributes"]["verb"] == "get"
        return allowed, "alice may read" if allowed else "denied by test policy"

    apiserver.access_policy = policy
    yes = sar(apiserver, "alice", "get")
    assert yes.status.allowed is True and yes.status.reason == "alice may read"
    no = sar(apiserver, "bob", "get")
    assert no.status.allowed is False and no.status.reason == "denied by test policy"
    assert seen[0]["resourceAttributes"]["subresource"] == "proxy"
    apiserver.access_policy = lambda spec: True
    assert sar(apiserver, "bob", "create").status.allowed is True


def test_auth_api_errors_can_be_injected(apiserver: ApiServer) -> None:
    apiserver.fail(500, resource="tokenreviews", times=1)
    with pytest.raises(ApiException) as caught:
        review(apiserver, "abc")
    assert caught.value.status == 500
    assert review(apiserver, "abc").status.authenticated is False


def non_resource_sar(
    apiserver: ApiServer, path: str, verb: str, user: str = "alice", groups: list[str] | None = None
) -> Any:
    api = client.AuthorizationV1Api(apiserver.api_client)
    return api.create_subject_access_review(
        {
            "spec": {
                "user": user,
                "groups": groups or [],
                "nonResourceAttributes": {"path": path, "verb": verb},
            }
        }
    )


def test_allow_rules_decide_non_resource_reviews(apiserver: ApiServer) -> None:
    apiserver.allow("alice", "get", path="/api/v1/statistics")
    apiserver.allow(None, "create", path="/api/v1/config/*", group="reloaders")
    yes = non_resource_sar(apiserver, "/api/v1/statistics", "get")
    assert yes.status.allowed is True and "alice" in yes.status.reason
    assert non_resource_sar(apiserver, "/api/v1/statistics", "create").status.allowed is False
    assert non_resource_sar(apiserver, "/api/v1/services", "get").status.allowed is False
    assert non_resource_sar(apiserver, "/api/v1/statistics", "get", "bob").status.allowed is False
    reload = non_resource_sar(apiserver, "/api/v1/config/reload", "create", "bob", ["reloaders"])
    assert reload.status.allowed is True
    no = non_resource_sar(apiserver, "/api/v1/config/reload", "create", "bob")
    assert no.status.allowed is False and no.status.reason == "no emulator rule allows it"
    assert no.status.denied in (None, False)


def test_deny_rules_win_and_set_denied(apiserver: ApiServer) -> None:
    apiserver.allow(None, "*", path="*")
    apiserver.deny("mallory", "get", path="/api/v1/statistics")
    assert non_resource_sar(apiserver, "/api/v1/statistics", "get").status.allowed is True
    refused = non_resource_sar(apiserver, "/api/v1/statistics", "get", "mallory")
    assert refused.status.allowed is False and refused.status.denied is True
    assert "mallory" in refused.status.reason


def test_allow_rules_decide_resource_reviews(apiserver: ApiServer) -> None:
    apiserver.allow("alice", ["get", "list"], resource="services/proxy", namespace="ops")
    assert sar(apiserver, "alice", "get").status.allowed is True
    assert sar(apiserver, "alice", "delete").status.allowed is False
    with pytest.raises(ValueError, match="either path or resource"):
        apiserver.allow("alice", "get")


def test_subject_access_review_is_validated_as_upstream(apiserver: ApiServer) -> None:
    api = client.AuthorizationV1Api(apiserver.api_client)
    with pytest.raises(ApiException) as caught:
        api.create_subject_access_review(
            {"spec": {"nonResourceAttributes": {"path": "/x", "verb": "get"}}}
        )
    assert caught.value.status == 422
    assert "at least one of user or group must be specified" in caught.value.body
    with pytest.raises(ApiException) as caught:
        api.create_subject_access_review({"spec": {"user": "alice"}})
    assert caught.value.status == 422
    assert "exactly one of nonResourceAttributes or resourceAttributes" in caught.value.body
