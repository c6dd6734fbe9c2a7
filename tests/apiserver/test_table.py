"""Server-side Table output: the real server's columns and cells, for lists, gets and watches."""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from dyntoolset.testing.apiserver import ApiServer
from dyntoolset.testing.apiserver.resources import resolve
from dyntoolset.testing.apiserver.table import age, human_duration, table, wants_table

from .conftest import configmap, service

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"


def get(apiserver: ApiServer, path: str, accept: str = TABLE) -> tuple[int, Any]:
    request = urllib.request.Request(apiserver.url + path, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def names(columns: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(c["name"], c["priority"]) for c in columns]


def test_services_have_the_real_columns_and_cells(apiserver: ApiServer) -> None:
    apiserver.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "selector": {"tier": "web", "app": "shop"},
                "externalIPs": ["192.0.2.1"],
                "ports": [
                    {"name": "http", "port": 80},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                ],
            },
        }
    )
    status, doc = get(apiserver, "/api/v1/namespaces/shop/services")
    assert status == 200
    assert (doc["kind"], doc["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert names(doc["columnDefinitions"]) == [
        ("Name", 0),
        ("Type", 0),
        ("Cluster-IP", 0),
        ("External-IP", 0),
        ("Port(s)", 0),
        ("Age", 0),
        ("Selector", 1),  # what -o wide adds
    ]
    stored = apiserver.get("services", "shop", "web")
    assert stored is not None
    [row] = doc["rows"]
    name, kind, cluster_ip, external, ports, _age, selector = row["cells"]
    assert (name, kind, cluster_ip) == ("web", "ClusterIP", stored["spec"]["clusterIP"])
    assert (external, ports, selector) == ("192.0.2.1", "80/TCP,53/UDP", "app=shop,tier=web")
    # Default includeObject=Metadata: the row carries the object's metadata only.
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["uid"] == stored["metadata"]["uid"]
    assert doc["metadata"]["resourceVersion"] == str(apiserver.resource_version)


@pytest.mark.parametrize(
    ("spec", "status", "external", "ports"),
    [
        (
            {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]},
            {},
            "<none>",
            "80:30080/TCP",
        ),
        ({"type": "LoadBalancer", "ports": [{"port": 80}]}, {}, "<pending>", "80/TCP"),
        (
            {"type": "LoadBalancer", "ports": [{"port": 80}], "externalIPs": ["192.0.2.9"]},
            {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}, {"hostname": "lb.example"}]}},
            "198.51.100.1,lb.example,192.0.2.9",
            "80/TCP",
        ),
        ({"type": "ExternalName", "externalName": "db.example"}, {}, "db.example", "<none>"),
    ],
)
def test_service_cells_by_type(
    spec: dict[str, Any], status: dict[str, Any], external: str, ports: str
) -> None:
    obj = {"metadata": {"name": "s"}, "spec": spec, "status": status}
    [row] = table(resolve("services"), [obj], {}, "None")["rows"]
    assert row["cells"][3:5] == [external, ports]
    assert "object" not in row  # includeObject=None


def test_configmaps_count_data_and_binary_data(apiserver: ApiServer) -> None:
    apiserver.create({**configmap("c", data={"a": "1", "b": "2"}), "binaryData": {"z": "AA=="}})
    status, doc = get(apiserver, "/api/v1/namespaces/default/configmaps/c")  # a get: one row
    assert status == 200
    assert names(doc["columnDefinitions"]) == [("Name", 0), ("Data", 0), ("Age", 0)]
    assert [row["cells"][:2] for row in doc["rows"]] == [["c", 3]]


def test_leases_and_namespaces(apiserver: ApiServer) -> None:
    apiserver.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "ops"},
            "status": {"phase": "Active"},
        }
    )
    apiserver.create(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "leader", "namespace": "ops"},
            "spec": {"holderIdentity": "pod-1"},
        }
    )
    _, leases = get(apiserver, "/apis/coordination.k8s.io/v1/leases")
    assert names(leases["columnDefinitions"]) == [("Name", 0), ("Holder", 0), ("Age", 0)]
    assert [r["cells"][:2] for r in leases["rows"]] == [["leader", "pod-1"]]
    _, namespaces = get(apiserver, "/api/v1/namespaces?includeObject=Object")
    assert names(namespaces["columnDefinitions"]) == [("Name", 0), ("Status", 0), ("Age", 0)]
    ops = [r for r in namespaces["rows"] if r["cells"][0] == "ops"]
    assert [r["cells"][1] for r in ops] == ["Active"]
    assert ops[0]["object"]["kind"] == "Namespace"  # includeObject=Object: the whole object


def test_pages_of_a_table_carry_the_continue_token(apiserver: ApiServer) -> None:
    for name in ("a", "b", "c"):
        apiserver.create(configmap(name))
    _, first = get(apiserver, "/api/v1/configmaps?limit=2")
    assert [r["cells"][0] for r in first["rows"]] == ["a", "b"]
    token = first["metadata"]["continue"]
    _, second = get(apiserver, f"/api/v1/configmaps?limit=2&continue={token}")
    assert [r["cells"][0] for r in second["rows"]] == ["c"]


def test_without_the_table_accept_header_lists_are_plain(apiserver: ApiServer) -> None:
    apiserver.create(configmap("c"))
    _, doc = get(apiserver, "/api/v1/configmaps", accept="application/json")
    assert doc["kind"] == "ConfigMapList"


def test_a_bad_include_object_is_400(apiserver: ApiServer) -> None:
    status, doc = get(apiserver, "/api/v1/configmaps?includeObject=Everything")
    assert status == 400
    assert "includeObject" in doc["message"]


def test_errors_stay_status_objects(apiserver: ApiServer) -> None:
    status, doc = get(apiserver, "/api/v1/namespaces/default/configmaps/missing")
    assert (status, doc["kind"], doc["reason"]) == (404, "Status", "NotFound")


@pytest.mark.apiserver(watch_timeout=0.5)
def test_watch_events_are_tables_with_columns_on_the_first(apiserver: ApiServer) -> None:
    start = apiserver.resource_version
    apiserver.create(configmap("a", data={"k": "v"}))
    apiserver.create(service("s"))  # another resource: not in this watch
    apiserver.modify("configmaps", "default", "a", lambda cm: cm.update(data={}))
    apiserver.delete("configmaps", "default", "a")
    request = urllib.request.Request(
        f"{apiserver.url}/api/v1/configmaps?watch=true&resourceVersion={start}",
        headers={"Accept": TABLE},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        events = [json.loads(line) for line in response.read().splitlines() if line]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(e["object"]["kind"] == "Table" for e in events)
    assert [[r["cells"][:2] for r in e["object"]["rows"]] for e in events] == [
        [["a", 1]],
        [["a", 0]],
        [["a", 0]],
    ]
    assert "columnDefinitions" in events[0]["object"]
    assert "columnDefinitions" not in events[1]["object"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (130, "2m10s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 120, "3h2m"),
        (47 * 3600, "47h"),
        (50 * 3600, "2d2h"),
        (8 * 86400, "8d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_read_like_upstream(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_age_of_an_object_without_a_valid_timestamp_is_unknown() -> None:
    assert age({"metadata": {}}) == "<unknown>"
    assert age({"metadata": {"creationTimestamp": "yesterday"}}) == "<unknown>"
    created = {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}}
    assert age(created, now=datetime.datetime(2026, 1, 1, 0, 5, tzinfo=datetime.UTC)) == "5m"


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        (TABLE, True),
        ("application/json;as=Table;v=v1;g=meta.k8s.io", True),
        ("application/json", False),
        ("application/json;as=Table;g=example.com", False),
        ("", False),
    ],
)
def test_table_is_negotiated_from_accept(accept: str, wanted: bool) -> None:
    assert wants_table(accept) is wanted
