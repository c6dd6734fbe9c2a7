"""Strategic merge patch: merge keys, list strategies and every directive."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiError, ApiServer
from dyntoolset.testing.apiserver.resources import resolve
from dyntoolset.testing.apiserver.strategic import patch_object

from .conftest import service

SERVICE = resolve("services")
CONFIGMAP = resolve("configmaps")
STRATEGIC = "application/strategic-merge-patch+json"


def svc(*ports: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": {"ports": list(ports), **spec},
    }


def port(number: int, name: str = "", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"port": number, "protocol": "TCP", "targetPort": number, **extra}
    if name:
        out["name"] = name
    return out


def test_kubectl_apply_patch_for_a_changed_port_leaves_exactly_the_new_port() -> None:
    current = svc(port(9090, "web"))
    # What kubectl apply sends when the manifest's port goes from 9090 to 9091.
    patch = {
        "spec": {
            "$setElementOrder/ports": [{"port": 9091}],
            "ports": [{"name": "web", "port": 9091}, {"$patch": "delete", "port": 9090}],
        }
    }
    result = patch_object(SERVICE, current, patch)
    assert result["spec"]["ports"] == [{"name": "web", "port": 9091}]
    assert current["spec"]["ports"] == [port(9090, "web")]  # the input is not changed


def test_items_with_the_same_merge_key_merge_field_by_field() -> None:
    current = svc(port(80, "http"), port(443, "https"))
    result = patch_object(SERVICE, current, {"spec": {"ports": [{"port": 443, "name": "tls"}]}})
    assert result["spec"]["ports"] == [port(80, "http"), port(443, "tls")]


def test_new_items_are_appended_and_their_directives_do_not_become_data() -> None:
    result = patch_object(
        SERVICE, svc(port(80)), {"spec": {"ports": [{"port": 81, "$patch": "merge"}]}}
    )
    assert result["spec"]["ports"] == [port(80), {"port": 81}]


def test_deleting_an_item_that_is_not_there_changes_nothing() -> None:
    result = patch_object(
        SERVICE, svc(port(80)), {"spec": {"ports": [{"$patch": "delete", "port": 1}]}}
    )
    assert result["spec"]["ports"] == [port(80)]


def test_replace_directive_in_a_list_replaces_it_whole() -> None:
    result = patch_object(
        SERVICE,
        svc(port(80), port(81)),
        {"spec": {"ports": [{"port": 90}, {"$patch": "replace"}]}},
    )
    assert result["spec"]["ports"] == [{"port": 90}]


def test_replace_directive_on_a_map_replaces_it_whole() -> None:
    current = svc(port(80), selector={"app": "a", "tier": "web"})
    result = patch_object(
        SERVICE, current, {"spec": {"selector": {"app": "b", "$patch": "replace"}}}
    )
    assert result["spec"]["selector"] == {"app": "b"}


def test_delete_directive_on_a_map_empties_it() -> None:
    current = svc(port(80), selector={"app": "a"})
    result = patch_object(SERVICE, current, {"spec": {"selector": {"$patch": "delete"}}})
    assert result["spec"]["selector"] == {}


def test_set_element_order_orders_the_patch_and_keeps_server_only_items_in_place() -> None:
    current = svc(port(1), port(2), port(3))
    patch = {
        "spec": {
            "$setElementOrder/ports": [{"port": 3}, {"port": 1}],
            "ports": [{"port": 3, "name": "c"}],
        }
    }
    result = patch_object(SERVICE, current, patch)
    # 2 is only on the server, where it came before 3: upstream puts it before 3 again.
    assert [p["port"] for p in result["spec"]["ports"]] == [2, 3, 1]
    assert result["spec"]["ports"][1] == port(3, "c")


def test_set_element_order_puts_new_items_where_the_order_says() -> None:
    current = svc(port(1), port(2))
    patch = {
        "spec": {
            "$setElementOrder/ports": [{"port": 5}, {"port": 2}],
            "ports": [{"port": 5}],
        }
    }
    result = patch_object(SERVICE, current, patch)
    assert [p["port"] for p in result["spec"]["ports"]] == [5, 1, 2]


def test_set_element_order_alone_reorders_the_list() -> None:
    current = svc(port(1), port(2))
    result = patch_object(
        SERVICE, current, {"spec": {"$setElementOrder/ports": [{"port": 2}, {"port": 1}]}}
    )
    assert [p["port"] for p in result["spec"]["ports"]] == [2, 1]


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list_removes() -> None:
    current = svc(port(80))
    current["metadata"]["finalizers"] = ["a", "b"]
    result = patch_object(
        SERVICE,
        current,
        {"metadata": {"finalizers": ["b", "c"], "$deleteFromPrimitiveList/finalizers": ["a"]}},
    )
    assert result["metadata"]["finalizers"] == ["b", "c"]


def test_owner_references_merge_by_uid() -> None:
    current = svc(port(80))
    current["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "one", "uid": "u1"},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "two", "uid": "u2"},
    ]
    patch = {
        "metadata": {
            "ownerReferences": [
                {"uid": "u2", "controller": True},
                {"uid": "u3", "apiVersion": "v1", "kind": "ConfigMap", "name": "three"},
                {"uid": "u1", "$patch": "delete"},
            ]
        }
    }
    result = patch_object(SERVICE, current, patch)
    assert [
        (r["uid"], r["name"], r.get("controller")) for r in result["metadata"]["ownerReferences"]
    ] == [
        ("u2", "two", True),
        ("u3", "three", None),
    ]


def test_lists_without_a_merge_strategy_are_replaced() -> None:
    current = svc(port(80), externalIPs=["1.1.1.1", "2.2.2.2"])
    result = patch_object(SERVICE, current, {"spec": {"externalIPs": ["3.3.3.3"]}})
    assert result["spec"]["externalIPs"] == ["3.3.3.3"]


def test_free_maps_merge_and_null_deletes() -> None:
    current = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", "labels": {"a": "1", "b": "2"}},
        "data": {"x": "1", "y": "2"},
    }
    patch = {"metadata": {"labels": {"a": None, "c": "3"}}, "data": {"y": None, "z": "3"}}
    result = patch_object(CONFIGMAP, copy.deepcopy(current), patch)
    assert result["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert result["data"] == {"x": "1", "z": "3"}


def test_retain_keys_drops_the_keys_not_listed() -> None:
    current = svc(port(80), selector={"app": "a"}, sessionAffinity="None", type="ClusterIP")
    patch = {"spec": {"$retainKeys": ["ports", "type"], "type": "NodePort"}}
    result = patch_object(SERVICE, current, patch)
    assert result["spec"] == {"ports": [port(80)], "type": "NodePort"}


def test_a_patched_key_missing_from_retain_keys_is_invalid() -> None:
    with pytest.raises(ApiError) as caught:
        patch_object(
            SERVICE, svc(port(80)), {"spec": {"$retainKeys": ["ports"], "type": "NodePort"}}
        )
    assert caught.value.code == 422
    assert "'type'" in caught.value.message and "$retainKeys" in caught.value.message


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"spec": {"$patch": "explode"}}, "unknown patch type: explode"),
        ({"spec": {"ports": [{"name": "web"}]}}, "does not contain declared merge key: port"),
        ({"spec": {"ports": ["80"]}}, "expected a map with merge key 'port'"),
        ({"metadata": {"finalizers": [{"a": 1}]}}, "a list of scalars got a map item"),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, "must be a list"),
        ({"spec": {"$setElementOrder/ports": "80"}}, "must be a list"),
        ({"spec": {"$retainKeys": "ports"}}, "must be a list of field names"),
        ({"spec": {"ports": [{"port": 80, "$patch": "bogus"}]}}, "unknown patch type: bogus"),
        (["not", "a", "map"], "must be a JSON object"),
    ],
)
def test_malformed_patches_are_400_naming_the_problem(patch: Any, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        patch_object(SERVICE, svc(port(80)), patch)
    assert caught.value.code == 400
    assert message in caught.value.message


def test_over_http_the_port_list_merges_by_key(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(service("s", ports=[{"name": "a", "port": 80}, {"name": "b", "port": 81}]))
    patched = v1.patch_namespaced_service(
        "s", "default", {"spec": {"ports": [{"port": 81, "name": "bee"}]}}, _content_type=STRATEGIC
    )
    assert [(p.name, p.port) for p in patched.spec.ports] == [("a", 80), ("bee", 81)]
    stored = apiserver.get("services", "default", "s")
    assert stored is not None
    assert "$" not in repr(stored)  # no directive ever lands in stored data


def test_over_http_a_malformed_patch_is_400_and_changes_nothing(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(service("s"))
    before = apiserver.resource_version
    with pytest.raises(ApiException) as caught:
        v1.patch_namespaced_service(
            "s", "default", {"spec": {"ports": [{"name": "x"}]}}, _content_type=STRATEGIC
        )
    assert caught.value.status == 400
    assert apiserver.resource_version == before
