"""List: selectors, pagination with continue tokens, resourceVersion semantics."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiServer

from .conftest import configmap

LABELLED = {
    "a": {"app": "prometheus", "tier": "metrics"},
    "b": {"app": "grafana", "tier": "ui"},
    "c": {"app": "loki"},
    "d": {},
}


@pytest.fixture
def labelled(apiserver: ApiServer) -> None:
    for name, labels in LABELLED.items():
        apiserver.create(configmap(name, labels=labels))


def names(result: object) -> list[str]:
    return [item.metadata.name for item in result.items]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=prometheus", ["a"]),
        ("app==grafana", ["b"]),
        ("app!=prometheus", ["b", "c", "d"]),
        ("app in (prometheus,loki)", ["a", "c"]),
        ("app in (prometheus, loki)", ["a", "c"]),
        ("app notin (prometheus,loki)", ["b", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("app,!tier", ["c"]),
        ("app in (prometheus,grafana),tier=ui", ["b"]),
        ("", ["a", "b", "c", "d"]),
    ],
)
def test_label_selector(
    labelled: None, v1: client.CoreV1Api, selector: str, expected: list[str]
) -> None:
    assert names(v1.list_namespaced_config_map("default", label_selector=selector)) == expected


@pytest.mark.parametrize("selector", ["app in (", "a b", "app=x y", "=x", "app in ()"])
def test_malformed_label_selector_is_400(
    labelled: None, v1: client.CoreV1Api, selector: str
) -> None:
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_config_map("default", label_selector=selector)
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["reason"] == "BadRequest"


def test_field_selector(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("x", "one"))
    apiserver.create(configmap("y", "one"))
    apiserver.create(configmap("x", "two"))
    everywhere = v1.list_config_map_for_all_namespaces
    assert [
        (c.metadata.namespace, c.metadata.name)
        for c in everywhere(field_selector="metadata.name=x").items
    ] == [("one", "x"), ("two", "x")]
    assert names(everywhere(field_selector="metadata.namespace=one,metadata.name!=x")) == ["y"]
    assert names(everywhere(field_selector="metadata.namespace==two")) == ["x"]
    with pytest.raises(ApiException) as caught:
        everywhere(field_selector="spec.foo=bar")
    assert caught.value.status == 400


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 6, 100])
def test_pagination_boundaries(apiserver: ApiServer, v1: client.CoreV1Api, limit: int) -> None:
    for index in range(5):
        apiserver.create(configmap(f"cm-{index}"))
    collected: list[str] = []
    token = None
    pages = 0
    while True:
        page = v1.list_namespaced_config_map("default", limit=limit, _continue=token)
        pages += 1
        assert len(page.items) <= limit
        collected += names(page)
        token = page.metadata._continue
        if not token:
            assert page.metadata.remaining_item_count is None
            break
        assert page.metadata.remaining_item_count == 5 - len(collected)
    assert collected == [f"cm-{i}" for i in range(5)]
    assert pages == max(1, -(-5 // limit))


def test_pagination_with_selector_fills_pages(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    for index in range(6):
        apiserver.create(configmap(f"cm-{index}", labels={"even": str(index % 2 == 0).lower()}))
    first = v1.list_namespaced_config_map("default", limit=2, label_selector="even=true")
    assert names(first) == ["cm-0", "cm-2"]
    second = v1.list_namespaced_config_map(
        "default", limit=2, label_selector="even=true", _continue=first.metadata._continue
    )
    assert names(second) == ["cm-4"] and not second.metadata._continue


def test_continue_serves_a_consistent_snapshot(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    for name in ("a", "b", "c", "d"):
        apiserver.create(configmap(name, data={"v": "old"}))
    first = v1.list_namespaced_config_map("default", limit=2)
    apiserver.delete("configmaps", "default", "c")
    apiserver.create(configmap("e"))
    apiserver.modify("configmaps", "default", "d", lambda cm: cm["data"].update(v="new"))
    second = v1.list_namespaced_config_map("default", limit=2, _continue=first.metadata._continue)
    assert names(second) == ["c", "d"]
    assert second.items[1].data == {"v": "old"}
    assert second.metadata.resource_version == first.metadata.resource_version
    fresh = v1.list_namespaced_config_map("default")
    assert names(fresh) == ["a", "b", "d", "e"]


def test_the_pages_of_one_list_share_one_snapshot_and_seeds_renew_it(
    apiserver: ApiServer, v1: client.CoreV1Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each page used to copy and sort every object again: a 50,000-Service
    # list in 500-item pages took 48 s, now 6.
    snapshots: list[int] = []
    store = apiserver.store
    real = type(store).snapshot
    monkeypatch.setattr(
        type(store), "snapshot", lambda self, res, rv: snapshots.append(rv) or real(self, res, rv)
    )
    for index in range(7):
        apiserver.create(configmap(f"cm-{index}"))
    apiserver.create(configmap("other", namespace="kube-public"))
    token, collected = None, []
    while True:
        page = v1.list_namespaced_config_map("default", limit=2, _continue=token)
        collected += names(page)
        token = page.metadata._continue
        if not token:
            break
    assert collected == [f"cm-{i}" for i in range(7)] and len(snapshots) == 1
    # A seed takes no resourceVersion, yet the next list must see it.
    apiserver.seed(configmap("seeded"))
    assert "seeded" in names(v1.list_namespaced_config_map("default"))
    assert names(v1.list_namespaced_config_map("kube-public")) == ["other"]
    assert len(snapshots) == 2


def test_expired_continue_token_is_410(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    for name in ("a", "b", "c"):
        apiserver.create(configmap(name))
    first = v1.list_namespaced_config_map("default", limit=1)
    apiserver.create(configmap("z"))
    apiserver.compact()
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_config_map("default", limit=1, _continue=first.metadata._continue)
    assert caught.value.status == 410
    body = json.loads(caught.value.body)
    assert body["reason"] == "Expired" and body["code"] == 410


@pytest.mark.apiserver(history_limit=3)
def test_continue_token_expires_with_the_history_window(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    for name in ("a", "b"):
        apiserver.create(configmap(name))
    first = v1.list_namespaced_config_map("default", limit=1)
    apiserver.create(configmap("c"))  # window still covers the token's version
    assert names(
        v1.list_namespaced_config_map("default", limit=1, _continue=first.metadata._continue)
    ) == ["b"]
    for name in ("d", "e", "f"):
        apiserver.create(configmap(name))
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_config_map("default", limit=1, _continue=first.metadata._continue)
    assert caught.value.status == 410


def test_invalid_continue_token_is_400(v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_config_map("default", limit=1, _continue="not-a-token")
    assert caught.value.status == 400


def test_list_exact_resource_version(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("a"))
    then = str(apiserver.resource_version)
    apiserver.create(configmap("b"))
    old = v1.list_namespaced_config_map(
        "default", resource_version=then, resource_version_match="Exact"
    )
    assert names(old) == ["a"] and old.metadata.resource_version == then
    assert names(v1.list_namespaced_config_map("default", resource_version="0")) == ["a", "b"]


def test_list_items_are_shaped_as_on_the_wire(apiserver: ApiServer) -> None:
    apiserver.create(configmap("a"))
    pool = apiserver.api_client.rest_client.pool_manager
    body = json.loads(pool.request("GET", f"{apiserver.url}/api/v1/configmaps").data)
    assert body["kind"] == "ConfigMapList" and body["apiVersion"] == "v1"
    assert "kind" not in body["items"][0] and "apiVersion" not in body["items"][0]
    assert body["items"][0]["metadata"]["name"] == "a"


# Upstream's ValidateListOptions / ListReadConsistency (apimachinery, apiserver storage).
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"resource_version_match": "NotOlderThan"},
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ),
        (
            {"resource_version_match": "Exact", "resource_version": "0"},
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            'resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
        ),
        (
            {"resource_version_match": "Newest", "resource_version": "5"},
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: '
            '"Newest": supported values: "Exact", "NotOlderThan", ""',
        ),
        (
            {"resource_version_match": "Nope"},
            'ListOptions.meta.k8s.io "" is invalid: [resourceVersionMatch: Forbidden: '
            "resourceVersionMatch is forbidden unless resourceVersion is provided, "
            'resourceVersionMatch: Unsupported value: "Nope": supported values: '
            '"Exact", "NotOlderThan", ""]',
        ),
        (
            {"resource_version_match": "NotOlderThan", "watch": True},
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ),
    ],
)
def test_invalid_list_options_are_422(
    v1: client.CoreV1Api, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_config_map("default", **options)  # type: ignore[arg-type]
    assert caught.value.status == 422
    body = json.loads(caught.value.body)
    assert (body["reason"], body["code"], body["message"]) == ("Invalid", 422, message)
    assert body["details"]["kind"] == "ListOptions"
    assert body["details"]["group"] == "meta.k8s.io"
    assert {c["field"] for c in body["details"]["causes"]} == {"resourceVersionMatch"}


def test_match_with_continue_is_422_and_resource_version_with_continue_400(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    for name in "abc":
        apiserver.create(configmap(name))
    first = v1.list_namespaced_config_map("default", limit=1)
    token = first.metadata._continue
    rv = first.metadata.resource_version
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_config_map(
            "default", limit=1, _continue=token, resource_version=rv, resource_version_match="Exact"
        )
    assert caught.value.status == 422
    assert "resourceVersionMatch is forbidden when continue is provided" in caught.value.body
    with pytest.raises(ApiException) as caught:
        v1.list_namespaced_config_map("default", limit=1, _continue=token, resource_version=rv)
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["message"] == (
        "specifying resource version is not allowed when using continue"
    )
    # resourceVersion "0" with a continue token is tolerated, as upstream.
    assert names(
        v1.list_namespaced_config_map("default", limit=1, _continue=token, resource_version="0")
    ) == ["b"]
