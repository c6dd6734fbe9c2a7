"""The store hands out and keeps copies: what a caller changes never reaches the stored object."""

from __future__ import annotations

import datetime

from dyntoolset.testing.apiserver import ApiServer
from dyntoolset.testing.apiserver.store import json_copy


def test_json_copy_is_deep_and_equal():
    original = {"a": [1, {"b": "c", "d": None}], "e": {"f": [True, 2.5]}}
    copied = json_copy(original)
    assert copied == original
    copied["a"][1]["b"] = "changed"
    copied["e"]["f"].append(3)
    assert original == {"a": [1, {"b": "c", "d": None}], "e": {"f": [True, 2.5]}}


def test_json_copy_copies_what_is_not_json_as_deepcopy_would():
    when = datetime.datetime(2026, 1, 1)
    nested = {"when": when, "pair": ([1, 2], "x")}
    copied = json_copy(nested)
    assert copied == nested
    assert copied["pair"][0] is not nested["pair"][0]  # a tuple's list is copied too


def test_objects_read_and_written_directly_are_copies():
    api = ApiServer()
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"ports": [{"port": 80}]},
    }
    created = api.create(service)
    service["metadata"]["labels"]["app"] = "changed by the caller"
    created["spec"]["ports"][0]["port"] = 81
    read = api.get("services", "shop", "web")
    assert read is not None
    assert read["metadata"]["labels"] == {"app": "web"}
    assert read["spec"]["ports"][0]["port"] == 80
    read["metadata"]["labels"]["app"] = "changed again"
    assert api.list_objects("services", "shop")[0]["metadata"]["labels"] == {"app": "web"}
