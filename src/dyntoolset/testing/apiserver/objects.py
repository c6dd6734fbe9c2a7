"""Identity, server-set fields and defaults of objects before they are stored, per resource.

The type check (:mod:`.typecheck`) comes first and validation (:mod:`.validation`) last.
"""

from __future__ import annotations

import ipaddress
import threading
import uuid
from typing import Any

from dyntoolset.testing.apiserver import typecheck, validation
from dyntoolset.testing.apiserver.fields import now
from dyntoolset.testing.apiserver.resources import ResourceType, bad_request, invalid

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
    allocator: ClusterIPAllocator | None,
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
    if res.plural == "services":
        if allocator is None:
            raise TypeError("Services need a cluster IP allocator")
        _service(res, obj, existing, allocator)
    elif res.plural == "namespaces":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
    validation.validate(res, obj, existing)
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
    fixed = []
    for port in spec.get("ports") or []:
        port = dict(port or {})
        # As upstream's defaulting: an empty protocol is TCP, a zero target the port.
        port["protocol"] = port.get("protocol") or "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port") or 0
        fixed.append(port)
    if fixed:
        spec["ports"] = fixed
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
