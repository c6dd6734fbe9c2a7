"""Slim :class:`~dyntoolset.model.Service` snapshots from raw Kubernetes JSON.

Used for manifests read from files and for objects read from the API server
(which we parse as plain JSON: the client's model deserialisation costs
several times more CPU and memory per Service).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from dyntoolset import urlpolicy
from dyntoolset.errors import DyntoolsetError, describe
from dyntoolset.model import Port, Service, new_service

_PROTOCOLS = ("TCP", "UDP", "SCTP")
_EMPTY: Mapping[str, str] = MappingProxyType({})
_join = "".join

#: Values already found valid, so that each distinct one is checked once:
#: a cluster has thousands of Services but few distinct namespaces and
#: ports. Bounded, since a watch runs for months over names that come and go:
#: when a cache is full it starts over (a cache, never a source of truth).
_CACHE_LIMIT = 4096
_valid_namespaces: set[str] = set()
#: Port snapshots by their raw fields; shared between Services (they are
#: immutable), which also saves the memory of a copy per Service.
_ports: dict[tuple[Any, ...], Port] = {}


class SnapshotError(DyntoolsetError, ValueError):
    """A Service object is missing required fields, has the wrong shape, or is not a Service."""


def _str_map(value: Any, field: str) -> Mapping[str, str]:
    if value is None:
        return _EMPTY
    if type(value) is not dict and not isinstance(value, dict):
        raise SnapshotError(
            f"{field} must be a mapping of strings to strings, got {describe(value)}"
        )
    # Joining the keys, then the values, proves at C speed that they are all
    # strings (a TypeError names no entry): half the cost of a Python test
    # per entry, or of comparing type sets (issue 15, workload 3).
    try:
        _join(value)
        _join(value.values())
    except TypeError:
        for key, item in value.items():  # say which entry, on the error path only
            if not isinstance(key, str):
                raise SnapshotError(f"{field} keys must be strings, got {describe(key)}") from None
            if not isinstance(item, str):
                raise SnapshotError(
                    f"{field}[{key!r}] must be a string, got {describe(item)}"
                ) from None
        raise  # pragma: no cover - join refuses exactly what isinstance refuses
    return MappingProxyType(value)


def _string(value: Any, field: str, default: str = "") -> str:
    """``value`` if it is a string (``default`` when empty or absent)."""
    if value is None:
        return default
    if type(value) is not str:
        raise SnapshotError(f"{field} must be a string, got {describe(value)}")
    return value or default


def _port_string(raw: dict[str, Any], key: str, index: int, default: str = "") -> str:
    value = raw.get(key)
    if type(value) is str:
        return value or default
    if value is None:
        return default
    return _string(value, f"spec.ports[{index}].{key}", default)


def _port(raw: Any, index: int) -> Port:
    if not isinstance(raw, dict):
        raise SnapshotError(f"spec.ports[{index}] must be a mapping")
    fields = (raw.get("port"), raw.get("name"), raw.get("protocol"), raw.get("appProtocol"))
    # The types are part of the key: True and 1.0 are equal to 1 as keys, and
    # a str subclass to its str (both refused by the checks).
    key = (fields, tuple(map(type, fields)))
    try:
        return _ports[key]
    except (KeyError, TypeError):  # TypeError: a field is a list or a mapping
        pass
    port = _checked_port(raw, index)  # raises for anything invalid: never cached
    if len(_ports) >= _CACHE_LIMIT:
        _ports.clear()
    _ports[key] = port
    return port


def _checked_port(raw: dict[str, Any], index: int) -> Port:
    number = raw.get("port")
    if type(number) is not int or not 0 < number < 65536:
        raise SnapshotError(
            f"spec.ports[{index}].port must be an integer 1-65535, got {describe(number)}"
        )
    # Checked as the API server checks them (a Service port name is a DNS
    # label; only container ports use IANA service names): these strings reach
    # the rendered documents, and one with a NEL or NUL once broke toolset.json.
    name = _port_string(raw, "name", index)
    problem = urlpolicy.dns_label_problem(name, "port name") if name else None
    if problem:
        raise SnapshotError(f"spec.ports[{index}].name {problem}")
    protocol = _port_string(raw, "protocol", index, "TCP")
    if protocol not in _PROTOCOLS:
        raise SnapshotError(
            f"spec.ports[{index}].protocol must be one of {', '.join(_PROTOCOLS)}, "
            f"got {describe(protocol)}"
        )
    app_protocol = _port_string(raw, "appProtocol", index)
    if app_protocol:
        problem = urlpolicy.qualified_name_problem(app_protocol, "appProtocol")
        if problem:
            raise SnapshotError(f"spec.ports[{index}].appProtocol: {problem}")
    return Port(port=number, name=name, protocol=protocol, app_protocol=app_protocol)


def _name_problem(value: str, rule: Callable[[str, str], str | None], what: str) -> str:
    """The policy's message, quoting ``value`` shortened (a name can be 10 KB long)."""
    problem = rule(value, what) or ""
    return problem.replace(repr(value), describe(value), 1)


def _check_namespace(namespace: Any) -> None:
    if not isinstance(namespace, str):
        raise SnapshotError(f"metadata.namespace must be a string, got {describe(namespace)}")
    if urlpolicy.dns_label_problem(namespace):
        raise SnapshotError(
            "metadata.namespace "
            + _name_problem(namespace, urlpolicy.dns_label_problem, "namespace")
        )
    if len(_valid_namespaces) >= _CACHE_LIMIT:
        _valid_namespaces.clear()
    _valid_namespaces.add(namespace)


def service_from_object(obj: Mapping[str, Any]) -> Service:
    """Build a :class:`Service` from a ``v1/Service`` object as JSON-decoded data.

    Raises :class:`SnapshotError` naming the offending field, or the kind
    when ``obj`` says it is something else (``kind``/``apiVersion`` may be
    absent, as in the items of a ``ServiceList``).
    """
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if (kind is not None and kind != "Service") or (
        api_version is not None and api_version != "v1"
    ):
        raise SnapshotError(
            f"expected a v1 Service, got {describe(kind)} of apiVersion {describe(api_version)}"
        )
    meta = obj.get("metadata")
    if type(meta) is not dict and not isinstance(meta, dict):
        raise SnapshotError("metadata must be a mapping")
    name = meta.get("name")
    if name is None or name == "":
        raise SnapshotError("metadata.name is required")
    if not isinstance(name, str):  # name: 2024-01-01 is a date in YAML
        raise SnapshotError(f"metadata.name must be a string, got {describe(name)}")
    # What the API server accepts: a Service name is a DNS-1035 label, a
    # namespace a DNS-1123 label. Both become the endpoint's host name.
    if urlpolicy.dns1035_label_problem(name):
        raise SnapshotError(
            "metadata.name " + _name_problem(name, urlpolicy.dns1035_label_problem, "Service name")
        )
    namespace = meta.get("namespace") or "default"
    if type(namespace) is not str or namespace not in _valid_namespaces:
        _check_namespace(namespace)
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    elif type(spec) is not dict and not isinstance(spec, dict):
        raise SnapshotError("spec must be a mapping")
    raw_ports = spec.get("ports")
    if raw_ports is None:
        raw_ports = ()
    elif type(raw_ports) is not list and not isinstance(raw_ports, list):
        raise SnapshotError("spec.ports must be a list")
    # In the order the checks always ran, so a Service with several problems
    # is refused with the same one as before.
    labels = _str_map(meta.get("labels"), "metadata.labels")
    annotations = _str_map(meta.get("annotations"), "metadata.annotations")
    ports = tuple([_port(p, i) for i, p in enumerate(raw_ports)])
    service_type = spec.get("type")
    if type(service_type) is not str or not service_type:
        service_type = _string(service_type, "spec.type", "ClusterIP")
    cluster_ip = spec.get("clusterIP")
    if type(cluster_ip) is not str:
        cluster_ip = _string(cluster_ip, "spec.clusterIP")
    uid = meta.get("uid")
    version = meta.get("resourceVersion")
    # Positional and straight into the slots: attrs' keyword __init__ was
    # 2 of the snapshot's 12 µs (issue 15).
    return new_service(
        name,
        namespace,
        labels,
        annotations,
        ports,
        service_type,
        cluster_ip,
        uid if type(uid) is str else str(uid or ""),
        version if type(version) is str else str(version or ""),
    )
