"""Direct object access: seeding, reading and writing behind the clients' backs."""

from __future__ import annotations

import select
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from dyntoolset.testing.apiserver import ApiError, ApiServer

from .conftest import configmap, service


def test_seed_and_read(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    stored = apiserver.seed(service("a", "x"), configmap("c"))
    assert [o["kind"] for o in stored] == ["Service", "ConfigMap"]
    assert v1.read_namespaced_service("a", "x").spec.cluster_ip == stored[0]["spec"]["clusterIP"]
    got = apiserver.get("configmaps", "default", "c")
    assert got is not None and got["metadata"]["uid"] == stored[1]["metadata"]["uid"]
    assert apiserver.get("cm", "default", "missing") is None
    assert [o["metadata"]["name"] for o in apiserver.list_objects("Service")] == ["a"]


def test_namespace_defaults_to_default(apiserver: ApiServer) -> None:
    body = configmap("c")
    del body["metadata"]["namespace"]
    assert apiserver.create(body)["metadata"]["namespace"] == "default"


def test_returned_objects_are_copies(apiserver: ApiServer) -> None:
    apiserver.create(configmap("c", data={"k": "v"}))
    got = apiserver.get("configmaps", "default", "c")
    assert got is not None
    got["data"]["k"] = "changed"
    assert apiserver.get("configmaps", "default", "c")["data"] == {"k": "v"}  # type: ignore[index]


def test_modify_behind_the_back_is_seen_by_watchers(
    apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    created = apiserver.create(configmap("c", data={"generated": "1"}))
    w = watch.Watch()
    stream = w.stream(
        v1.list_namespaced_config_map,
        "default",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=5,
    )
    after = apiserver.modify("configmaps", "default", "c", lambda cm: cm["data"].pop("generated"))
    event = next(stream)
    assert event["type"] == "MODIFIED"
    assert event["object"].data is None or event["object"].data == {}
    assert event["object"].metadata.resource_version == after["metadata"]["resourceVersion"]
    w.stop()
    stream.close()
    # A stale replace by the client now conflicts, as with any other writer.
    stale = v1.read_namespaced_config_map("c", "default")
    stale.metadata.resource_version = created["metadata"]["resourceVersion"]
    with pytest.raises(client.exceptions.ApiException) as caught:
        v1.replace_namespaced_config_map("c", "default", stale)
    assert caught.value.status == 409


def test_modify_that_changes_nothing_is_a_noop(apiserver: ApiServer) -> None:
    apiserver.create(configmap("c"))
    before = apiserver.resource_version
    apiserver.modify("configmaps", "default", "c", lambda cm: None)
    assert apiserver.resource_version == before


def test_put_creates_or_replaces_unconditionally(apiserver: ApiServer) -> None:
    first = apiserver.put(configmap("c", data={"a": "1"}))
    stale = configmap("c", data={"a": "2"})
    stale["metadata"]["resourceVersion"] = "1"  # ignored: a put is unconditional
    second = apiserver.put(stale)
    assert second["data"] == {"a": "2"}
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])


def test_writes_with_a_manager_own_fields(apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("c", data={"k": "human"}), manager="kubectl-edit")
    with pytest.raises(client.exceptions.ApiException) as caught:
        v1.patch_namespaced_config_map(
            "c",
            "default",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "c"},
                "data": {"k": "x"},
            },
            field_manager="dyntoolset",
            _content_type="application/apply-patch+yaml",
        )
    assert caught.value.status == 409


def test_delete_and_errors(apiserver: ApiServer) -> None:
    apiserver.create(configmap("c"))
    last = apiserver.delete("configmaps", "default", "c")
    assert last["metadata"]["name"] == "c"
    with pytest.raises(ApiError) as caught:
        apiserver.delete("configmaps", "default", "c")
    assert caught.value.code == 404
    with pytest.raises(ApiError) as caught:
        apiserver.create(configmap("d")) and apiserver.create(configmap("d"))
    assert caught.value.code == 409
    with pytest.raises(KeyError):
        apiserver.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})


def test_seed_manifests(apiserver: ApiServer, tmp_path: Path) -> None:
    (tmp_path / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: prom, namespace: monitoring}\n"
        "spec: {ports: [{port: 9090}]}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: prom, namespace: monitoring}\n"
        "spec: {ports: [{port: 9090}]}\n",
        encoding="utf-8",
    )
    (tmp_path / "list.json").write_text(
        '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": '
        '"ConfigMap", "metadata": {"name": "cm", "namespace": "ops"}, "data": {"a": "b"}}]}',
        encoding="utf-8",
    )
    problems = apiserver.seed_manifests(tmp_path)
    assert len(problems) == 2
    assert any("Pod" in p for p in problems)
    assert any("already exists" in p for p in problems)
    assert apiserver.get("services", "monitoring", "prom") is not None
    assert apiserver.get("configmaps", "ops", "cm")["data"] == {"a": "b"}  # type: ignore[index]


def test_a_burst_of_new_connections_is_not_stalled(apiserver: ApiServer) -> None:
    """Parallel clients (a health-check round, a controller's workers) open many
    connections at once; a short listen backlog drops their SYNs, and each
    dropped one costs a 1 s retransmission.

    Counted, not timed: while the server accepts nothing, every connection of
    a burst of 96 must still complete its handshake from the kernel's accept
    queue. With a short backlog the surplus SYNs are dropped, and their
    retransmissions keep failing for as long as nothing accepts, so the
    count falls short however long the wait; the wait only bounds a failing run.
    """
    clients = 96
    httpd = apiserver._httpd
    assert httpd is not None
    release = threading.Event()
    accept = httpd.get_request

    def held_accept() -> tuple[socket.socket, Any]:
        release.wait(60)
        return accept()

    httpd.get_request = held_accept  # type: ignore[method-assign]  # the acceptor thread blocks here
    sockets: list[socket.socket] = []
    try:
        for _ in range(clients):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", apiserver.port))
            sockets.append(sock)
        pending = set(sockets)
        give_up = time.monotonic() + 10
        while pending and time.monotonic() < give_up:
            _, writable, _ = select.select([], list(pending), [], 0.5)
            pending.difference_update(writable)
        connected = [
            s
            for s in sockets
            if s not in pending and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        ]
        assert len(connected) == clients
    finally:
        release.set()
        for sock in sockets:
            sock.close()
