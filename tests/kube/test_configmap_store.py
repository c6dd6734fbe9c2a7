"""ConfigMapStore and ConfigMapWatch against the emulator through the real client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dyntoolset.kube.configmaps import ConfigMapStore, ConfigMapWatch
from dyntoolset.kube.errors import ApiFailure, RbacRule
from dyntoolset.testing.apiserver import ApiServer
from tests.kube._support import FAST, Recorder, fast_backoff, wait_for
from tests.kube.conftest import create_namespace


def configmap(data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "tools", "namespace": "ops", **meta},
        "data": data,
    }


@pytest.fixture
def store(apiserver: ApiServer) -> Iterator[ConfigMapStore]:
    create_namespace(apiserver, "ops")
    made = ConfigMapStore(apiserver.api_client, "ops", "tools", timeouts=FAST)
    yield made
    made.close()


def test_read_is_none_only_on_404(apiserver: ApiServer, store: ConfigMapStore) -> None:
    assert store.read() is None
    apiserver.create(configmap({"a": "1"}))
    read = store.read()
    assert read is not None and read["data"] == {"a": "1"} and read["metadata"]["resourceVersion"]
    apiserver.fail(500, verb="get", resource="configmaps", times=1)
    with pytest.raises(ApiFailure) as caught:
        store.read()
    assert caught.value.temporary and caught.value.status == 500


def test_creates_when_missing_and_replaces_with_the_read_version(
    apiserver: ApiServer, store: ConfigMapStore
) -> None:
    created = store.write(configmap({"a": "1"}), None)
    assert apiserver.get("configmaps", "ops", "tools")["data"] == {"a": "1"}
    assert [w.verb for w in apiserver.writes("configmaps")] == ["create"]
    # A copy of the stored object carries server fields; the store strips them for a create
    # and sends the read resourceVersion for a replace.
    replaced = store.write({**created, "data": {"a": "2"}}, created)
    assert replaced["data"] == {"a": "2"}
    update = apiserver.writes("configmaps")[-1]
    assert update.verb == "update"
    assert update.body["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert "managedFields" not in update.body["metadata"]


def test_a_stale_replace_is_a_conflict(apiserver: ApiServer, store: ConfigMapStore) -> None:
    apiserver.create(configmap({"a": "1"}))
    read = store.read()
    assert read is not None
    apiserver.modify("configmaps", "ops", "tools", lambda o: o["data"].update(b="2"))
    with pytest.raises(ApiFailure) as caught:
        store.write({**read, "data": {"a": "3"}}, read)
    assert caught.value.conflict and caught.value.reason == "Conflict"
    assert apiserver.get("configmaps", "ops", "tools")["data"] == {"a": "1", "b": "2"}


def test_a_create_race_is_a_conflict_not_an_overwrite(
    apiserver: ApiServer, store: ConfigMapStore
) -> None:
    assert store.read() is None
    apiserver.create(configmap({"theirs": "x"}))  # another writer wins the race
    with pytest.raises(ApiFailure) as caught:
        store.write(configmap({"mine": "y"}), None)
    assert caught.value.conflict and caught.value.reason == "AlreadyExists"
    assert apiserver.get("configmaps", "ops", "tools")["data"] == {"theirs": "x"}


def test_403_on_write_names_the_rule(apiserver: ApiServer, store: ConfigMapStore) -> None:
    apiserver.create(configmap({"a": "1"}))
    read = store.read()
    assert read is not None
    apiserver.fail(403, reason="Forbidden", verb="update", resource="configmaps")
    with pytest.raises(ApiFailure) as caught:
        store.write(read, read)
    assert not caught.value.temporary
    assert caught.value.rbac_hint == RbacRule("update", "configmaps", "ops", "tools")
    apiserver.fail(403, reason="Forbidden", verb="create", resource="configmaps")
    apiserver.delete("configmaps", "ops", "tools")
    with pytest.raises(ApiFailure) as created:
        store.write(read, None)
    assert created.value.rbac_hint == RbacRule("create", "configmaps", "ops", None)


def test_a_connection_error_is_temporary(apiserver: ApiServer, store: ConfigMapStore) -> None:
    apiserver.drop(verb="create", resource="configmaps", times=1)
    with pytest.raises(ApiFailure) as caught:
        store.write(configmap({"a": "1"}), None)
    assert caught.value.temporary and caught.value.status == 0


def test_watch_reports_edits_and_deletion_of_its_configmap_only(apiserver: ApiServer) -> None:
    apiserver.create(configmap({"a": "1"}))
    events = Recorder()
    watch = ConfigMapWatch(
        apiserver.api_client, "ops", "tools", events, timeouts=FAST, backoff=fast_backoff
    )
    watch.start()
    try:
        first = events.wait(1)[0]
        assert first[0] == "configmap-listed" and first[1]["data"] == {"a": "1"}
        wait_for(lambda: apiserver.active_watches)
        apiserver.create({**configmap({}), "metadata": {"name": "other", "namespace": "ops"}})
        apiserver.modify("configmaps", "ops", "tools", lambda o: o["data"].update(a="2"))
        apiserver.delete("configmaps", "ops", "tools")
        calls = events.wait(3)
        assert [c[0] for c in calls] == [
            "configmap-listed",
            "configmap-changed",
            "configmap-deleted",
        ]
        watch_request = apiserver.find_requests(verb="watch", resource="configmaps")[0]
        assert watch_request.query["fieldSelector"] == "metadata.name=tools"
    finally:
        watch.stop()
