"""Labels and annotations: the snapshot's C-speed proof that every key and value is a string.

``service_from_object`` proves a map holds only strings by joining its keys
and its values (issue 15); whatever the join refuses must still be refused
with the field and entry named, and what it accepts kept unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from dyntoolset.snapshot import SnapshotError, service_from_object


def svc(field: str, value: Any) -> dict[str, Any]:
    return {"metadata": {"name": "api", "namespace": "team-a", field: value}}


class Text(str):
    """A str subclass: JSON never makes one; the snapshot has always accepted it in maps."""


@pytest.mark.parametrize("field", ["labels", "annotations"])
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1: "x"}, "keys must be strings, got 1"),
        ({None: "x"}, "keys must be strings, got None"),
        ({"ok": "x", "n": 2}, "['n'] must be a string, got 2"),
        ({"t": True}, "['t'] must be a string, got True"),
        ({"d": {"nested": "x"}}, "['d'] must be a string, got {'nested': 'x'}"),
        ({"l": ["x"]}, "['l'] must be a string, got ['x']"),
        ({"b": b"x"}, "['b'] must be a string, got b'x'"),
        ("app=x", "must be a mapping of strings to strings, got 'app=x'"),
    ],
)
def test_a_map_with_anything_but_strings_is_refused_naming_the_entry(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(SnapshotError) as caught:
        service_from_object(svc(field, value))
    assert str(caught.value) == f"metadata.{field}{'' if message[0] == '[' else ' '}{message}"


@pytest.mark.parametrize("field", ["labels", "annotations"])
def test_a_map_of_strings_is_kept_as_it_is_and_read_only(field: str) -> None:
    value = {
        "app.kubernetes.io/name": "prometheus",
        "": "",
        Text("k"): Text("v"),
        "big": "x" * 10**5,
    }
    service = service_from_object(svc(field, value))
    kept = getattr(service, field)
    assert dict(kept) == value
    with pytest.raises(TypeError):
        kept["new"] = "x"  # type: ignore[index]


def test_an_absent_or_null_map_is_empty() -> None:
    for value in (None, {}):
        service = service_from_object(svc("labels", value))
        assert dict(service.labels) == {} and dict(service.annotations) == {}


@pytest.mark.parametrize(
    ("spec", "first_problem"),
    [
        # The maps are checked before the port entries, the port entries before
        # spec.type and spec.clusterIP: the order the checks have always run in.
        ({"ports": [{"port": 0}]}, "metadata.labels['a'] must be a string, got 1"),
        ({"ports": "80"}, "spec.ports must be a list"),
        (
            {"ports": [{"port": 0}], "type": 5, "clusterIP": 7},
            "metadata.labels['a'] must be a string, got 1",
        ),
    ],
)
def test_a_service_with_several_problems_is_refused_with_the_first_in_check_order(
    spec: dict[str, Any], first_problem: str
) -> None:
    obj = {"metadata": {"name": "api", "labels": {"a": 1}}, "spec": spec}
    with pytest.raises(SnapshotError, match=r"^" + re.escape(first_problem)):
        service_from_object(obj)


def test_port_entries_are_checked_before_the_type_and_the_cluster_ip() -> None:
    obj = {"metadata": {"name": "api"}, "spec": {"ports": [{"port": 0}], "type": 5}}
    with pytest.raises(SnapshotError, match=r"^spec\.ports\[0\]\.port must be an integer"):
        service_from_object(obj)
