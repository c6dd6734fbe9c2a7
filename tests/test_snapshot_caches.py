"""The snapshot's caches of values already checked change no verdict (issue 15).

``service_from_object`` checks each distinct namespace and port once and
reuses the result; a value equal to a cached one but of another type, or a
cache that filled up, must still be judged exactly as without the cache.
"""

from __future__ import annotations

import pytest

from dyntoolset import snapshot
from dyntoolset.snapshot import SnapshotError, service_from_object


def svc(namespace: object = "team-a", port: object = 80, **port_fields: object) -> dict:
    return {
        "metadata": {"name": "api", "namespace": namespace},
        "spec": {"ports": [{"port": port, **port_fields}]},
    }


class Text(str):
    """A str subclass: equal to its text, refused like any non-str."""


@pytest.mark.parametrize(("cached", "port"), [(1, True), (80, 80.0)])
def test_a_port_equal_to_a_cached_one_but_not_an_int_is_still_refused(cached, port):
    assert service_from_object(svc(port=cached, name="http")).ports[0].port == cached
    with pytest.raises(SnapshotError, match=r"spec.ports\[0\].port must be an integer"):
        service_from_object(svc(port=port, name="http"))


def test_a_port_name_equal_to_a_cached_one_but_a_str_subclass_is_still_refused():
    service_from_object(svc(name="http"))
    with pytest.raises(SnapshotError, match=r"spec.ports\[0\].name must be a string"):
        service_from_object(svc(name=Text("http")))


def test_ports_with_the_same_fields_are_shared_and_different_ones_are_not():
    first = service_from_object(svc(name="web", appProtocol="http")).ports[0]
    again = service_from_object(svc(name="web", appProtocol="http")).ports[0]
    other = service_from_object(svc(name="web", protocol="UDP")).ports[0]
    assert first is again
    assert (other.protocol, other.app_protocol) == ("UDP", "")


def test_an_unhashable_port_field_is_refused_with_its_field():
    with pytest.raises(SnapshotError, match=r"spec.ports\[0\].name must be a string"):
        service_from_object(svc(name=["http"]))


def test_an_invalid_namespace_is_never_cached():
    for _ in range(2):
        with pytest.raises(SnapshotError, match=r"metadata\.namespace 'Team_A' is not a valid"):
            service_from_object(svc(namespace="Team_A"))


def test_the_caches_stay_bounded_and_keep_judging(monkeypatch):
    monkeypatch.setattr(snapshot, "_CACHE_LIMIT", 8)
    for index in range(50):
        service_from_object(svc(namespace=f"ns-{index}", port=1000 + index))
        assert len(snapshot._valid_namespaces) <= 8 and len(snapshot._ports) <= 8
    with pytest.raises(SnapshotError, match=r"metadata\.namespace"):
        service_from_object(svc(namespace="-bad"))
    with pytest.raises(SnapshotError, match="port must be an integer 1-65535"):
        service_from_object(svc(port=70000))
