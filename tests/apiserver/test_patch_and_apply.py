"""JSON merge patch, JSON patch and server-side apply with field ownership."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiServer

from .conftest import configmap

APPLY = "application/apply-patch+yaml"


def apply(
    v1: client.CoreV1Api, body: dict[str, Any], manager: str, force: bool = False, name: str = "cm"
) -> client.V1ConfigMap:
    return v1.patch_namespaced_config_map(
        name, "default", body, field_manager=manager, force=force, _content_type=APPLY
    )


def cm_config(
    data: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "cm", "namespace": "default"}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    if data is not None:
        body["data"] = data
    return body


def managers(obj: client.V1ConfigMap) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m.manager, m.operation): m.fields_v1 for m in obj.metadata.managed_fields or []}


def test_merge_patch_sets_and_deletes_keys(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("cm", data={"a": "1", "b": "2"}))
    patched = v1.patch_namespaced_config_map(
        "cm",
        "default",
        {"data": {"a": None, "c": "3"}, "metadata": {"labels": {"x": "y"}}},
        _content_type="application/merge-patch+json",
    )
    assert patched.data == {"b": "2", "c": "3"}
    assert patched.metadata.labels == {"x": "y"}


def test_default_patch_content_type_is_accepted(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("cm", data={"a": "1"}))
    patched = v1.patch_namespaced_config_map("cm", "default", {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}
    assert apiserver.requests[-1].content_type == "application/strategic-merge-patch+json"


def test_json_patch(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("cm", data={"a": "1"}))
    patched = v1.patch_namespaced_config_map(
        "cm",
        "default",
        [
            {"op": "test", "path": "/data/a", "value": "1"},
            {"op": "replace", "path": "/data/a", "value": "2"},
            {"op": "add", "path": "/data/b", "value": "3"},
            {"op": "add", "path": "/metadata/annotations", "value": {"x~y/z": "1"}},
            {"op": "remove", "path": "/metadata/annotations/x~0y~1z"},
        ],
    )
    assert patched.data == {"a": "2", "b": "3"}
    assert patched.metadata.annotations == {}
    with pytest.raises(ApiException) as caught:
        v1.patch_namespaced_config_map(
            "cm", "default", [{"op": "test", "path": "/data/a", "value": "1"}]
        )
    assert caught.value.status == 422


def test_patch_with_stale_resource_version_is_409(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    old = apiserver.create(configmap("cm", data={"a": "1"}))
    apiserver.modify("configmaps", "default", "cm", lambda cm: cm["data"].update(a="2"))
    with pytest.raises(ApiException) as caught:
        v1.patch_namespaced_config_map(
            "cm",
            "default",
            {
                "metadata": {"resourceVersion": old["metadata"]["resourceVersion"]},
                "data": {"a": "3"},
            },
            _content_type="application/merge-patch+json",
        )
    assert caught.value.status == 409


def test_patch_missing_is_404(v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        v1.patch_namespaced_config_map("nope", "default", {"data": {"a": "1"}})
    assert caught.value.status == 404


def raw_patch(
    apiserver: ApiServer, body: bytes, content_type: str, query: str = ""
) -> tuple[int, dict[str, Any]]:
    """PATCH with a body the generated client refuses to send (text)."""
    pool = apiserver.api_client.rest_client.pool_manager
    response = pool.request(
        "PATCH",
        f"{apiserver.url}/api/v1/namespaces/default/configmaps/cm{query}",
        body=body,
        headers={"Content-Type": content_type},
    )
    return response.status, json.loads(response.data)


def test_unsupported_patch_type_is_415(apiserver: ApiServer) -> None:
    apiserver.create(configmap("cm"))
    status, body = raw_patch(apiserver, b"data: {}", "text/plain")
    assert status == 415
    assert body["reason"] == "UnsupportedMediaType"


def test_apply_creates_and_records_the_manager(v1: client.CoreV1Api) -> None:
    created = apply(v1, cm_config({"a": "1"}, labels={"l": "1"}), "dyntoolset")
    assert created.data == {"a": "1"} and created.metadata.labels == {"l": "1"}
    assert managers(created) == {
        ("dyntoolset", "Apply"): {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:l": {}}}}
    }


def test_apply_requires_field_manager(v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        v1.patch_namespaced_config_map("cm", "default", cm_config({"a": "1"}), _content_type=APPLY)
    assert caught.value.status == 422
    assert "fieldManager" in json.loads(caught.value.body)["message"]


def test_apply_keeps_foreign_keys_labels_and_annotations(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_config_map(
        "default",
        {
            "metadata": {
                "name": "cm",
                "labels": {"team": "sre"},
                "annotations": {"note": "hand-written"},
            },
            "data": {"overrides.yaml": "keep: me\n"},
        },
        field_manager="kubectl",
    )
    applied = apply(
        v1,
        cm_config({"holmes.yaml": "generated"}, labels={"gen": "yes"}, annotations={"hash": "abc"}),
        "dyntoolset",
    )
    assert applied.data == {"overrides.yaml": "keep: me\n", "holmes.yaml": "generated"}
    assert applied.metadata.labels == {"team": "sre", "gen": "yes"}
    assert applied.metadata.annotations == {"note": "hand-written", "hash": "abc"}
    assert set(managers(applied)) == {("kubectl", "Update"), ("dyntoolset", "Apply")}


def test_apply_removes_only_its_own_dropped_fields(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_config_map(
        "default", {"metadata": {"name": "cm"}, "data": {"foreign": "x"}}, field_manager="someone"
    )
    apply(v1, cm_config({"one": "1", "two": "2"}, annotations={"a": "1"}), "dyntoolset")
    again = apply(v1, cm_config({"one": "1"}), "dyntoolset")
    assert again.data == {"foreign": "x", "one": "1"}
    assert again.metadata.annotations is None


def test_apply_conflicts_with_another_managers_value(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_config_map(
        "default", {"metadata": {"name": "cm"}, "data": {"k": "theirs"}}, field_manager="other"
    )
    with pytest.raises(ApiException) as caught:
        apply(v1, cm_config({"k": "mine"}), "dyntoolset")
    assert caught.value.status == 409
    body = json.loads(caught.value.body)
    assert body["reason"] == "Conflict"
    # Upstream's printManager: an updater is named with its apiVersion and time.
    (entry,) = v1.read_namespaced_config_map("cm", "default").metadata.managed_fields
    at = entry.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    who = f'"other" using v1 at {at}'
    assert body["message"] == f"Apply failed with 1 conflict: conflict with {who}: .data.k"
    assert body["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": f"conflict with {who}", "field": ".data.k"}
    ]
    # Same value: shared ownership, no conflict.
    shared = apply(v1, cm_config({"k": "theirs"}), "dyntoolset")
    assert set(managers(shared)) == {("other", "Update"), ("dyntoolset", "Apply")}


def test_conflicts_with_several_managers_are_grouped_as_upstream(
    v1: client.CoreV1Api,
) -> None:
    apply(v1, cm_config({"a": "1", "b": "2"}), "first")
    with pytest.raises(ApiException) as caught:
        apply(v1, cm_config({"a": "x", "b": "y"}), "second")
    body = json.loads(caught.value.body)
    assert (
        body["message"]
        == 'Apply failed with 2 conflicts: conflicts with "first":\n- .data.a\n- .data.b'
    )
    assert [c["message"] for c in body["details"]["causes"]] == ['conflict with "first"'] * 2


def test_forced_apply_takes_ownership(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_config_map(
        "default",
        {"metadata": {"name": "cm"}, "data": {"k": "theirs", "other": "x"}},
        field_manager="other",
    )
    forced = apply(v1, cm_config({"k": "mine"}), "dyntoolset", force=True)
    assert forced.data == {"k": "mine", "other": "x"}
    owners = managers(forced)
    assert owners[("other", "Update")] == {"f:data": {"f:other": {}}}
    assert owners[("dyntoolset", "Apply")] == {"f:data": {"f:k": {}}}


def test_update_by_another_writer_takes_ownership_then_apply_conflicts(
    v1: client.CoreV1Api,
) -> None:
    apply(v1, cm_config({"k": "generated"}), "dyntoolset")
    v1.patch_namespaced_config_map(
        "cm", "default", {"data": {"k": "edited"}}, field_manager="human"
    )
    with pytest.raises(ApiException) as caught:
        apply(v1, cm_config({"k": "generated"}), "dyntoolset")
    assert caught.value.status == 409
    restored = apply(v1, cm_config({"k": "generated"}), "dyntoolset", force=True)
    assert restored.data == {"k": "generated"}


def test_identical_apply_is_a_noop(v1: client.CoreV1Api) -> None:
    first = apply(v1, cm_config({"a": "1"}), "dyntoolset")
    second = apply(v1, cm_config({"a": "1"}), "dyntoolset")
    assert second.metadata.resource_version == first.metadata.resource_version


def test_apply_with_stale_resource_version_is_409(v1: client.CoreV1Api) -> None:
    first = apply(v1, cm_config({"a": "1"}), "dyntoolset")
    apply(v1, cm_config({"a": "2"}), "dyntoolset")
    stale = cm_config({"a": "3"})
    stale["metadata"]["resourceVersion"] = first.metadata.resource_version
    with pytest.raises(ApiException) as caught:
        apply(v1, stale, "dyntoolset")
    assert caught.value.status == 409


def test_apply_with_yaml_text_body(apiserver: ApiServer) -> None:
    text = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: from-yaml\n"
    status, body = raw_patch(apiserver, text, APPLY, "?fieldManager=kubectl")
    assert status == 201
    assert body["data"] == {"k": "from-yaml"}
    status, body = raw_patch(
        apiserver, text.replace(b"from-yaml", b"again"), APPLY, "?fieldManager=kubectl"
    )
    assert status == 200 and body["data"] == {"k": "again"}


def test_apply_on_leases(apiserver: ApiServer) -> None:
    leases = client.CoordinationV1Api(apiserver.api_client)
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "leader", "namespace": "default"},
        "spec": {"holderIdentity": "a"},
    }
    created = leases.patch_namespaced_lease(
        "leader", "default", body, field_manager="x", _content_type=APPLY
    )
    assert created.spec.holder_identity == "a"


def test_an_apply_that_sets_no_field_still_creates_the_object(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    applied = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bare"}}
    v1.patch_namespaced_config_map(
        "bare", "default", applied, field_manager="me", _content_type="application/apply-patch+yaml"
    )
    assert apiserver.get("configmaps", "default", "bare") is not None
    assert apiserver.server_errors == []
