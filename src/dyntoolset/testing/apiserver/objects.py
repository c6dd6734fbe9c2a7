"""Defaulting and validation of objects before they are stored, per resource."""

from __future__ import annotations

import ipaddress
import re
import threading
import uuid
from typing import Any

from dyntoolset.testing.apiserver import typecheck
from dyntoolset.testing.apiserver.fields import now
from dyntoolset.testing.apiserver.resources import ApiError, ResourceType, bad_request, invalid

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
#: The API server's limit on a ConfigMap's data (keys and values together).
CONFIGMAP_MAX_BYTES = 1024 * 1024
_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"


class ClusterIPAllocator:
    """Hands out Service cluster IPs from 10.96.0.0/12, in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._network = ipaddress.ip_network("10.96.0.0/12")
        self._next = 10

    def allocate(self) -> str:
        """The next free address."""
        with self._lock:
            address = self._network.network_address + self._next
            self._next += 1
            return str(address)


def _random_suffix() -> str:
    raw = uuid.uuid4().int
    out = []
    for _ in range(5):
        raw, index = divmod(raw, len(_SUFFIX_CHARS))
        out.append(_SUFFIX_CHARS[index])
    return "".join(out)


def prepare(
    res: ResourceType,
    obj: Any,
    namespace: str | None,
    existing: dict[str, Any] | None,
    allocator: ClusterIPAllocator,
) -> dict[str, Any]:
    """The object as it will be stored: identity checked, server fields set, defaults applied.

    ``namespace`` is the one from the URL (None for cluster-scoped resources or
    when the caller does not care); ``existing`` is the stored object on update.

    Raises:
        ApiError: 400 for a malformed or mismatched object, 422 for an invalid one.
    """
    typecheck.check_body(res, obj)
    obj = dict[str, Any](obj)
    kind = obj.get("kind")
    if kind not in (None, "", res.kind):
        raise bad_request(
            f"the kind of the object ({kind}) does not match the resource {res.plural} ({res.kind})"
        )
    api_version = obj.get("apiVersion")
    if api_version not in (None, "", res.api_version):
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the "
            f"expected API version ({res.api_version})"
        )
    obj["apiVersion"] = res.api_version
    obj["kind"] = res.kind
    meta = dict(obj.get("metadata") or {})
    obj["metadata"] = meta
    if res.namespaced:
        body_ns = meta.get("namespace")
        if namespace and body_ns and body_ns != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the "
                "namespace sent on the request"
            )
        meta["namespace"] = namespace or body_ns or "default"
    else:
        meta.pop("namespace", None)
    if existing is not None:
        meta["name"] = meta.get("name") or existing["metadata"]["name"]
        for field in ("uid", "creationTimestamp"):
            meta[field] = existing["metadata"].get(field)
    else:
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{_random_suffix()}"
            else:
                raise invalid(
                    res, "", "metadata.name", "Required value: name or generateName is required"
                )
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta.pop("resourceVersion", None)
        meta.pop("managedFields", None)
    name = str(meta["name"])
    pattern = _DNS_LABEL if res.plural in ("services", "namespaces") else _DNS_SUBDOMAIN
    if not pattern.match(name) or len(name) > (63 if pattern is _DNS_LABEL else 253):
        raise invalid(
            res,
            name,
            "metadata.name",
            f'Invalid value: "{name}": must be a valid '
            f"DNS {'label' if pattern is _DNS_LABEL else 'subdomain'} name",
        )
    for field in ("labels", "annotations"):
        values = meta.get(field)
        if values is not None and (
            not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
        ):
            raise bad_request(f"metadata.{field} must be a map of strings")
    if res.plural == "services":
        _service(res, obj, existing, allocator)
    elif res.plural == "configmaps":
        _configmap(res, obj, existing)
    elif res.plural == "namespaces":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
    prepared: dict[str, Any] = obj
    return prepared


def _service(
    res: ResourceType,
    obj: dict[str, Any],
    existing: dict[str, Any] | None,
    allocator: ClusterIPAllocator,
) -> None:
    name = obj["metadata"]["name"]
    spec = dict(obj.get("spec") or {})
    obj["spec"] = spec
    spec.setdefault("type", "ClusterIP")
    ports = spec.get("ports") or []
    if not isinstance(ports, list):
        raise bad_request("spec.ports must be a list")
    fixed = []
    for index, port in enumerate(ports):
        if not isinstance(port, dict) or not isinstance(port.get("port"), int):
            raise invalid(res, name, f"spec.ports[{index}].port", "Required value")
        port = dict(port)
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
        fixed.append(port)
    if fixed:
        spec["ports"] = fixed
    elif spec["type"] != "ExternalName":
        raise invalid(res, name, "spec.ports", "Required value")
    old_ip = ((existing or {}).get("spec") or {}).get("clusterIP")
    if spec["type"] == "ExternalName":
        spec.pop("clusterIP", None)
    elif old_ip and spec.get("clusterIP") not in (None, "", old_ip):
        raise invalid(res, name, "spec.clusterIP", "Invalid value: field is immutable")
    else:
        spec["clusterIP"] = spec.get("clusterIP") or old_ip or allocator.allocate()
        spec["clusterIPs"] = [spec["clusterIP"]]
    spec.setdefault("sessionAffinity", "None")
    obj.setdefault("status", {"loadBalancer": {}})


def _configmap(res: ResourceType, obj: dict[str, Any], existing: dict[str, Any] | None) -> None:
    name = obj["metadata"]["name"]
    size = 0
    for field in ("data", "binaryData"):
        values = obj.get(field)
        if values is None:
            continue
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise bad_request(f"{field} must be a map of strings")
        for key, value in values.items():
            if not _CONFIG_KEY.match(key) or len(key) > 253:
                raise invalid(
                    res,
                    name,
                    f"{field}[{key}]",
                    f'Invalid value: "{key}": a valid '
                    "config key must consist of alphanumeric characters, '-', '_' or "
                    "'.'",
                )
            size += len(key.encode()) + len(value.encode())
    if size > CONFIGMAP_MAX_BYTES:
        raise ApiError(
            422,
            "Invalid",
            f'ConfigMap "{name}" is invalid: []: Too long: must have at most '
            f"{CONFIGMAP_MAX_BYTES} bytes",
            {
                "name": name,
                "kind": "ConfigMap",
                "causes": [
                    {
                        "reason": "FieldValueTooLong",
                        "message": f"Too long: must have at most {CONFIGMAP_MAX_BYTES} bytes",
                        "field": "[]",
                    }
                ],
            },
        )
    if (
        existing is not None
        and existing.get("immutable")
        and (
            existing.get("data") != obj.get("data")
            or existing.get("binaryData") != obj.get("binaryData")
            or not obj.get("immutable")
        )
    ):
        raise invalid(res, name, "data", "Forbidden: field is immutable when `immutable` is set")
