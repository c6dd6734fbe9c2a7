"""Slim :class:`~dyntoolset.model.Service` snapshots from raw Kubernetes JSON.

Used for manifests read from files and for objects read from the API server
(which we parse as plain JSON: the client's model deserialisation costs
several times more CPU and memory per Service).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from dyntoolset.model import Port, Service


class SnapshotError(ValueError):
    """A Service object is missing required fields or has the wrong shape."""


def _str_map(value: Any, field: str) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise SnapshotError(f"{field} must be a mapping of strings to strings")
    return MappingProxyType(value)


def _port(raw: Any, index: int) -> Port:
    if not isinstance(raw, dict):
        raise SnapshotError(f"spec.ports[{index}] must be a mapping")
    number = raw.get("port")
    if type(number) is not int or not 0 < number < 65536:
        raise SnapshotError(f"spec.ports[{index}].port must be an integer 1-65535, got {number!r}")
    return Port(
        port=number,
        name=str(raw.get("name") or ""),
        protocol=str(raw.get("protocol") or "TCP"),
        app_protocol=str(raw.get("appProtocol") or ""),
    )


def service_from_object(obj: Mapping[str, Any]) -> Service:
    """Build a :class:`Service` from a ``v1/Service`` object as JSON-decoded data.

    Raises :class:`SnapshotError` naming the offending field.
    """
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise SnapshotError("metadata must be a mapping")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise SnapshotError("metadata.name is required")
    namespace = meta.get("namespace") or "default"
    if not isinstance(namespace, str):
        raise SnapshotError("metadata.namespace must be a string")
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise SnapshotError("spec must be a mapping")
    raw_ports = spec.get("ports")
    if raw_ports is None:
        raw_ports = []
    if not isinstance(raw_ports, list):
        raise SnapshotError("spec.ports must be a list")
    return Service(
        name=name,
        namespace=namespace,
        labels=_str_map(meta.get("labels"), "metadata.labels"),
        annotations=_str_map(meta.get("annotations"), "metadata.annotations"),
        ports=tuple(_port(p, i) for i, p in enumerate(raw_ports)),
        type=str(spec.get("type") or "ClusterIP"),
        cluster_ip=str(spec.get("clusterIP") or ""),
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
    )
