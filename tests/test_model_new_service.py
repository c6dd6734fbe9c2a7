"""``model.new_service``: the snapshot's fast constructor builds exactly ``Service(...)``."""

from __future__ import annotations

from types import MappingProxyType

import attrs
import pytest

from dyntoolset.model import Port, Service, new_service


def values() -> dict[str, object]:
    return {
        "name": "prom",
        "namespace": "monitoring",
        "labels": MappingProxyType({"app": "prometheus"}),
        "annotations": MappingProxyType({"a": "b"}),
        "ports": (Port(9090, "web"),),
        "type": "NodePort",
        "cluster_ip": "10.0.0.1",
        "uid": "u-1",
        "resource_version": "42",
    }


def test_it_sets_every_field_as_the_attrs_constructor_does() -> None:
    fields = values()
    assert [f.name for f in attrs.fields(Service)] == list(fields)  # the test covers each
    built = new_service(*fields.values())  # type: ignore[arg-type]
    assert built == Service(**fields)  # type: ignore[arg-type]
    assert attrs.asdict(built, recurse=False) == fields


def test_what_it_builds_is_frozen() -> None:
    built = new_service(*values().values())  # type: ignore[arg-type]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.name = "other"  # type: ignore[misc]
    assert attrs.evolve(built, name="other").name == "other"
