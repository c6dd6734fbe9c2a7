"""Create, read, replace, delete: resourceVersion, conflicts, Status bodies, validation."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiServer

from .conftest import configmap, service


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def test_create_assigns_identity_and_resource_version(v1: client.CoreV1Api) -> None:
    created = v1.create_namespaced_config_map("default", configmap("a", data={"k": "v"}))
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert int(created.metadata.resource_version) > 0
    read = v1.read_namespaced_config_map("a", "default")
    assert read.metadata.resource_version == created.metadata.resource_version
    assert read.data == {"k": "v"}


def test_resource_version_is_global_and_monotonic(
    apiserver: ApiServer, v1: client.CoreV1Api, leases: client.CoordinationV1Api
) -> None:
    versions = [
        int(v1.create_namespaced_config_map("default", configmap("a")).metadata.resource_version),
        int(v1.create_namespaced_service("default", service("s")).metadata.resource_version),
        int(
            leases.create_namespaced_lease(
                "default", {"metadata": {"name": "l"}, "spec": {"holderIdentity": "x"}}
            ).metadata.resource_version
        ),
        int(
            v1.patch_namespaced_config_map(
                "a", "default", {"data": {"x": "1"}}
            ).metadata.resource_version
        ),
    ]
    assert versions == sorted(versions) and len(set(versions)) == 4
    listed = v1.list_namespaced_config_map("default")
    assert listed.metadata.resource_version == str(apiserver.resource_version)
    assert int(listed.metadata.resource_version) == versions[-1]


def test_create_existing_is_409_already_exists(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_config_map("default", configmap("a"))
    with pytest.raises(ApiException) as caught:
        v1.create_namespaced_config_map("default", configmap("a"))
    assert caught.value.status == 409
    body = status_of(caught.value)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "a" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "a", "kind": "configmaps"},
        "code": 409,
    }


def test_get_missing_is_404_not_found(
    v1: client.CoreV1Api, leases: client.CoordinationV1Api
) -> None:
    with pytest.raises(ApiException) as caught:
        v1.read_namespaced_config_map("nope", "default")
    assert caught.value.status == 404
    assert status_of(caught.value)["reason"] == "NotFound"
    assert status_of(caught.value)["message"] == 'configmaps "nope" not found'
    with pytest.raises(ApiException) as caught:
        leases.read_namespaced_lease("nope", "default")
    assert status_of(caught.value)["details"] == {
        "name": "nope",
        "group": "coordination.k8s.io",
        "kind": "leases",
    }


def test_replace_with_stale_resource_version_is_409_conflict(v1: client.CoreV1Api) -> None:
    first = v1.create_namespaced_config_map("default", configmap("a", data={"k": "1"}))
    first.data = {"k": "2"}
    second = v1.replace_namespaced_config_map("a", "default", first)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    first.data = {"k": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as caught:
        v1.replace_namespaced_config_map("a", "default", first)
    assert caught.value.status == 409
    body = status_of(caught.value)
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    assert v1.read_namespaced_config_map("a", "default").data == {"k": "2"}


def test_replace_without_resource_version_is_unconditional(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_config_map("default", configmap("a", data={"k": "1"}))
    replaced = v1.replace_namespaced_config_map("a", "default", configmap("a", data={"k": "9"}))
    assert replaced.data == {"k": "9"}


def test_replace_missing_is_404(v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        v1.replace_namespaced_config_map("a", "default", configmap("a"))
    assert caught.value.status == 404


def test_noop_replace_keeps_resource_version(v1: client.CoreV1Api) -> None:
    created = v1.create_namespaced_config_map("default", configmap("a", data={"k": "1"}))
    same = v1.replace_namespaced_config_map("a", "default", created)
    assert same.metadata.resource_version == created.metadata.resource_version


def test_replace_keeps_uid_and_creation_timestamp(v1: client.CoreV1Api) -> None:
    created = v1.create_namespaced_config_map("default", configmap("a"))
    body = configmap("a", data={"x": "y"})
    body["metadata"]["uid"] = "forged"
    replaced = v1.replace_namespaced_config_map("a", "default", body)
    assert replaced.metadata.uid == created.metadata.uid
    assert replaced.metadata.creation_timestamp == created.metadata.creation_timestamp


def test_delete_returns_success_status_then_404(v1: client.CoreV1Api) -> None:
    created = v1.create_namespaced_config_map("default", configmap("a"))
    status = v1.delete_namespaced_config_map("a", "default")  # the 37.x client: a dict
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "a"
    assert status["details"]["uid"] == created.metadata.uid
    with pytest.raises(ApiException) as caught:
        v1.delete_namespaced_config_map("a", "default")
    assert caught.value.status == 404
    assert status_of(caught.value)["reason"] == "NotFound"


def test_delete_with_stale_precondition_is_409(v1: client.CoreV1Api) -> None:
    created = v1.create_namespaced_config_map("default", configmap("a"))
    v1.patch_namespaced_config_map("a", "default", {"data": {"b": "c"}})
    with pytest.raises(ApiException) as caught:
        v1.delete_namespaced_config_map(
            "a",
            "default",
            body={"preconditions": {"resourceVersion": created.metadata.resource_version}},
        )
    assert caught.value.status == 409
    assert v1.read_namespaced_config_map("a", "default")


def test_cluster_wide_and_namespaced_paths(v1: client.CoreV1Api) -> None:
    for name in ("a", "b"):
        v1.create_namespace({"metadata": {"name": name}})
    v1.create_namespaced_service("a", service("s1", "a"))
    v1.create_namespaced_service("b", service("s2", "b"))
    everywhere = v1.list_service_for_all_namespaces()
    assert [(s.metadata.namespace, s.metadata.name) for s in everywhere.items] == [
        ("a", "s1"),
        ("b", "s2"),
    ]
    assert [s.metadata.name for s in v1.list_namespaced_service("b").items] == ["s2"]
    assert v1.list_namespaced_service("c").items == []


def test_namespace_mismatch_is_400(v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        v1.create_namespaced_config_map("default", configmap("a", namespace="other"))
    assert caught.value.status == 400
    assert status_of(caught.value)["reason"] == "BadRequest"


def test_name_mismatch_on_replace_is_400(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_config_map("default", configmap("a"))
    with pytest.raises(ApiException) as caught:
        v1.replace_namespaced_config_map("a", "default", configmap("b"))
    assert caught.value.status == 400


def test_generate_name(v1: client.CoreV1Api) -> None:
    created = v1.create_namespaced_config_map("default", {"metadata": {"generateName": "x-"}})
    assert created.metadata.name.startswith("x-") and len(created.metadata.name) == 7


def test_missing_name_is_422(v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        v1.create_namespaced_config_map("default", {"metadata": {}})
    assert caught.value.status == 422
    assert status_of(caught.value)["reason"] == "Invalid"


def test_configmap_over_one_mebibyte_is_422(v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        v1.create_namespaced_config_map("default", configmap("big", data={"k": "x" * 1048577}))
    assert caught.value.status == 422
    assert "Too long" in status_of(caught.value)["message"]
    # As upstream, the limit counts the values only, not the keys.
    fits = configmap("fits", data={"k": "x" * 1048576})
    assert v1.create_namespaced_config_map("default", fits).metadata.name == "fits"


def test_service_defaults(v1: client.CoreV1Api) -> None:
    created = v1.create_namespaced_service("default", service("s", ports=[{"port": 9090}]))
    assert created.spec.type == "ClusterIP"
    assert created.spec.cluster_ip.startswith("10.")
    assert created.spec.ports[0].protocol == "TCP"
    other = v1.create_namespaced_service("default", service("t"))
    assert other.spec.cluster_ip != created.spec.cluster_ip


def test_lease_lifecycle_with_conflict(leases: client.CoordinationV1Api) -> None:
    body = {
        "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }
    created = leases.create_namespaced_lease("default", body)
    created.spec.holder_identity = "b"
    renewed = leases.replace_namespaced_lease("leader", "default", created)
    assert renewed.spec.holder_identity == "b"
    created.spec.holder_identity = "c"
    with pytest.raises(ApiException) as caught:
        leases.replace_namespaced_lease("leader", "default", created)
    assert caught.value.status == 409
    assert leases.read_namespaced_lease("leader", "default").spec.holder_identity == "b"


def test_namespaces_are_cluster_scoped(v1: client.CoreV1Api) -> None:
    v1.create_namespace({"metadata": {"name": "monitoring"}})
    assert v1.read_namespace("monitoring").status.phase == "Active"
    assert [n.metadata.name for n in v1.list_namespace().items] == [
        "default",
        "kube-node-lease",
        "kube-public",
        "kube-system",
        "monitoring",
    ]


def test_delete_collection_by_label(v1: client.CoreV1Api) -> None:
    v1.create_namespaced_config_map("default", configmap("a", labels={"x": "1"}))
    v1.create_namespaced_config_map("default", configmap("b", labels={"x": "2"}))
    v1.delete_collection_namespaced_config_map("default", label_selector="x=1")
    assert [c.metadata.name for c in v1.list_namespaced_config_map("default").items] == ["b"]


def test_official_lease_lock_sees_conflicts(apiserver: ApiServer) -> None:
    from datetime import datetime

    from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

    apiserver.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ops"}})

    def lock(identity: str) -> LeaseLock:
        made = LeaseLock("dyntoolset", "ops", identity)
        made.api_instance = client.CoordinationV1Api(apiserver.api_client)
        return made

    def record(identity: str) -> LeaderElectionRecord:
        now = str(datetime.now())
        return LeaderElectionRecord(identity, "15", now, now)

    first, second = lock("a"), lock("b")
    assert first.create("dyntoolset", "ops", record("a")) is True
    assert second.create("dyntoolset", "ops", record("b")) is False  # 409 AlreadyExists
    found, held = second.get("dyntoolset", "ops")
    assert found and held.holder_identity == "a"
    assert first.update("dyntoolset", "ops", record("a")) is True  # renew
    assert second.update("dyntoolset", "ops", record("b")) is False  # stale: 409 Conflict
    stored = apiserver.get("leases", "ops", "dyntoolset")
    assert stored is not None and stored["spec"]["holderIdentity"] == "a"
    assert stored["spec"]["renewTime"].endswith("Z") or "+00:00" in stored["spec"]["renewTime"]


@pytest.mark.parametrize("verb", ["create", "replace", "patch", "delete"])
def test_dry_run_is_refused_not_persisted(
    apiserver: ApiServer, v1: client.CoreV1Api, verb: str
) -> None:
    # Dry-run writes are not emulated; before, they were silently persisted.
    apiserver.create(configmap("cm", data={"k": "v"}))
    before = apiserver.resource_version
    calls = {
        "create": lambda: v1.create_namespaced_config_map(
            "default", configmap("new"), dry_run="All"
        ),
        "replace": lambda: v1.replace_namespaced_config_map(
            "cm", "default", configmap("cm", data={"k": "w"}), dry_run="All"
        ),
        "patch": lambda: v1.patch_namespaced_config_map(
            "cm", "default", {"data": {"k": "w"}}, dry_run="All"
        ),
        "delete": lambda: v1.delete_namespaced_config_map("cm", "default", dry_run="All"),
    }
    with pytest.raises(ApiException) as caught:
        calls[verb]()
    assert caught.value.status == 400
    assert "dryRun" in json.loads(caught.value.body)["message"]
    assert apiserver.resource_version == before
    assert apiserver.get("configmaps", "default", "cm")["data"] == {"k": "v"}
    assert apiserver.get("configmaps", "default", "new") is None


def test_create_with_a_resource_version_is_refused(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    # Re-creating a deleted object from a copy read earlier: the real API server's
    # storage refuses it (a plain error, so a 500 with no reason), and nothing is stored.
    apiserver.create(configmap("cm", data={"k": "v"}))
    stale = v1.read_namespaced_config_map("cm", "default")
    apiserver.delete("configmaps", "default", "cm")
    with pytest.raises(ApiException) as caught:
        v1.create_namespaced_config_map("default", stale)
    assert caught.value.status == 500
    body = json.loads(caught.value.body)
    assert body["message"] == "resourceVersion should not be set on objects to be created"
    assert "reason" not in body and body["status"] == "Failure"
    assert apiserver.get("configmaps", "default", "cm") is None
    # Without it, the same object is created.
    stale.metadata.resource_version = None
    assert v1.create_namespaced_config_map("default", stale).data == {"k": "v"}
