"""Namespaces behave as in a real cluster: they exist, they gate creates, deleting one empties it."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiError, ApiServer

from .conftest import configmap, service

SYSTEM = ["default", "kube-node-lease", "kube-public", "kube-system"]


def names(v1: client.CoreV1Api) -> list[str]:
    return [n.metadata.name for n in v1.list_namespace().items]


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def error(caught: pytest.ExceptionInfo[ApiException]) -> tuple[int, str, Any]:
    body = json.loads(caught.value.body)
    return caught.value.status, body["message"], body.get("details")


def test_a_new_server_has_the_system_namespaces_and_no_writes_yet(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    assert names(v1) == SYSTEM
    assert apiserver.resource_version == 100
    default = v1.read_namespace("default")
    assert default.status.phase == "Active"
    assert default.spec.finalizers == ["kubernetes"]
    assert int(default.metadata.resource_version) < 100
    created = v1.create_namespaced_config_map("default", configmap("a"))
    assert created.metadata.resource_version == "101"


def test_writing_an_object_directly_creates_its_namespace(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(service("prometheus", "monitoring"))
    apiserver.put(configmap("cm", "ops"))
    apiserver.seed(service("grafana", "monitoring"))
    assert names(v1) == [*SYSTEM, "monitoring", "ops"]
    assert v1.read_namespace("monitoring").status.phase == "Active"


def test_a_create_in_a_missing_namespace_is_refused_as_the_real_server_does(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    with pytest.raises(ApiException) as caught:
        v1.create_namespaced_config_map("missing", configmap("a", "missing"))
    assert error(caught) == (
        404,
        'namespaces "missing" not found',
        {"name": "missing", "kind": "namespaces"},
    )
    assert apiserver.list_objects("configmaps") == []
    assert names(v1) == SYSTEM


def test_an_apply_that_would_create_in_a_missing_namespace_is_refused(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    with pytest.raises(ApiException) as caught:
        v1.patch_namespaced_config_map(
            "a",
            "missing",
            configmap("a", "missing"),
            field_manager="me",
            _content_type="application/apply-patch+yaml",
        )
    assert error(caught)[:2] == (404, 'namespaces "missing" not found')
    assert apiserver.list_objects("configmaps") == []


def test_other_verbs_on_a_missing_namespace_name_the_object(v1: client.CoreV1Api) -> None:
    attempts = [
        lambda: v1.read_namespaced_service("x", "missing"),
        lambda: v1.patch_namespaced_service("x", "missing", {"metadata": {"labels": {"a": "b"}}}),
        lambda: v1.replace_namespaced_service("x", "missing", service("x", "missing")),
        lambda: v1.delete_namespaced_service("x", "missing"),
    ]
    for attempt in attempts:
        with pytest.raises(ApiException) as caught:
            attempt()
        assert error(caught) == (404, 'services "x" not found', {"name": "x", "kind": "services"})
    assert v1.list_namespaced_service("missing").items == []


def test_a_created_namespace_takes_objects(v1: client.CoreV1Api) -> None:
    created = v1.create_namespace({"metadata": {"name": "ops", "labels": {"team": "sre"}}})
    assert created.status.phase == "Active"
    assert created.metadata.labels == {"team": "sre"}
    v1.create_namespaced_config_map("ops", configmap("a", "ops"))
    assert [c.metadata.name for c in v1.list_namespaced_config_map("ops").items] == ["a"]
    with pytest.raises(ApiException) as caught:
        v1.create_namespace({"metadata": {"name": "ops"}})
    assert caught.value.status == 409


def test_namespace_names_are_dns_labels(v1: client.CoreV1Api) -> None:
    v1.create_namespace({"metadata": {"name": "123-abc"}})  # a leading digit is fine
    for bad in ("Ops", "a.b", "-a", "x" * 64):
        with pytest.raises(ApiException) as caught:
            v1.create_namespace({"metadata": {"name": bad}})
        assert caught.value.status == 422, bad


def test_deleting_a_namespace_deletes_what_it_holds(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(namespace("ops"))
    apiserver.create(configmap("a", "ops"))
    apiserver.create(service("s", "ops"))
    apiserver.create(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "l", "namespace": "ops"},
        }
    )
    apiserver.create(configmap("kept", "default"))
    start = str(apiserver.resource_version)

    response = v1.delete_namespace("ops", _preload_content=False)

    # The answer is the namespace as it was while terminating, not a Status.
    answer = json.loads(response.data)
    assert answer["kind"] == "Namespace"
    assert answer["status"]["phase"] == "Terminating"
    assert answer["metadata"]["deletionTimestamp"]
    assert names(v1) == SYSTEM
    assert apiserver.list_objects("configmaps") == [apiserver.get("configmaps", "default", "kept")]
    assert apiserver.list_objects("services") == []
    assert apiserver.list_objects("leases") == []
    # Watchers see it terminate, its contents go, then the namespace go.
    stream = watch.Watch().stream(
        v1.list_config_map_for_all_namespaces, resource_version=start, timeout_seconds=1
    )
    assert [(e["type"], e["object"].metadata.name) for e in stream] == [("DELETED", "a")]
    stream = watch.Watch().stream(v1.list_namespace, resource_version=start, timeout_seconds=1)
    assert [(e["type"], e["object"].status.phase) for e in stream] == [
        ("MODIFIED", "Terminating"),
        ("DELETED", "Terminating"),
    ]


def test_a_namespace_can_be_created_again_after_deletion(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    v1.create_namespace({"metadata": {"name": "ops"}})
    v1.create_namespaced_config_map("ops", configmap("a", "ops"))
    v1.delete_namespace("ops")
    v1.create_namespace({"metadata": {"name": "ops"}})
    assert v1.list_namespaced_config_map("ops").items == []


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
def test_the_system_namespaces_may_not_be_deleted(
    apiserver: ApiServer, v1: client.CoreV1Api, name: str
) -> None:
    apiserver.create(configmap("a", name))
    with pytest.raises(ApiException) as caught:
        v1.delete_namespace(name)
    assert error(caught) == (
        403,
        f'namespaces "{name}" is forbidden: this namespace may not be deleted',
        {"name": name, "kind": "namespaces"},
    )
    with pytest.raises(ApiError, match="may not be deleted"):
        apiserver.delete("namespaces", None, name)
    assert apiserver.get("configmaps", name, "a") is not None


def test_deleting_a_missing_namespace_is_404(v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        v1.delete_namespace("missing")
    assert error(caught)[:2] == (404, 'namespaces "missing" not found')


def test_a_namespace_delete_precondition_is_honoured(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(namespace("ops"))
    with pytest.raises(ApiException) as caught:
        v1.delete_namespace("ops", body={"preconditions": {"uid": "someone-else"}})
    assert caught.value.status == 409
    assert apiserver.get("namespaces", None, "ops")["status"]["phase"] == "Active"


def test_namespaces_have_no_delete_collection(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", apiserver.port, timeout=30)
    try:
        connection.request("DELETE", "/api/v1/namespaces")
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())["reason"]) == (405, "MethodNotAllowed")
    finally:
        connection.close()
    assert names(v1) == SYSTEM


def test_direct_deletion_of_a_namespace_deletes_its_objects(apiserver: ApiServer) -> None:
    apiserver.create(configmap("a", "ops"))
    last = apiserver.delete("namespaces", None, "ops")
    assert last["status"]["phase"] == "Terminating"
    assert apiserver.list_objects("configmaps") == []
    assert apiserver.get("namespaces", None, "ops") is None


def test_nothing_is_created_in_a_namespace_while_it_is_deleted(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(namespace("ops"))
    stop = threading.Event()
    outcomes: list[int] = []

    def keep_creating() -> None:
        index = 0
        api = client.CoreV1Api(apiserver.new_api_client())
        while not stop.is_set():
            index += 1
            try:
                api.create_namespaced_config_map("ops", configmap(f"c{index}", "ops"))
                outcomes.append(201)
            except ApiException as exc:
                outcomes.append(exc.status)

    writer = threading.Thread(target=keep_creating)
    writer.start()
    try:
        while len(outcomes) < 3 and writer.is_alive():
            stop.wait(0.01)
        v1.delete_namespace("ops")
        count = len(outcomes)
        while len(outcomes) < count + 3 and writer.is_alive():
            stop.wait(0.01)
    finally:
        stop.set()
        writer.join(timeout=30)
    # Whatever got in before the deletion went with the namespace; after it, only 404s.
    assert apiserver.get("namespaces", None, "ops") is None
    assert apiserver.list_objects("configmaps", "ops") == []
    assert 404 in outcomes
    assert set(outcomes) <= {201, 404}


def test_seeding_manifests_creates_namespaces_first_and_keeps_their_labels(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    manifest = tmp_path / "cluster.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ops}\n"
        "spec: {ports: [{port: 80}]}\n---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ops, labels: {team: sre}}\n---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: default, labels: {a: b}}\n",
        encoding="utf-8",
    )
    assert apiserver.seed_manifests(manifest) == []
    assert apiserver.get("namespaces", None, "ops")["metadata"]["labels"] == {"team": "sre"}
    assert apiserver.get("namespaces", None, "default")["metadata"]["labels"] == {"a": "b"}
    assert apiserver.get("services", "ops", "s") is not None
