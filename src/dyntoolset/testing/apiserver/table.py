"""Server-side printing: the ``meta.k8s.io/v1`` ``Table`` kubectl asks for.

``kubectl get`` sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``
and prints the columns the server chooses. These are the real server's
columns for the served kinds (its ``pkg/printers/internalversion``), cell
for cell: services ``NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE`` plus
``SELECTOR`` at priority 1 (what ``-o wide`` shows), configmaps
``NAME DATA AGE``, leases ``NAME HOLDER AGE``, namespaces ``NAME STATUS AGE``;
any other kind ``NAME CREATED AT``. Ages are rendered as upstream's
``HumanDuration`` renders them ("5m10s", "3d4h").
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from dyntoolset.testing.apiserver.resources import ResourceType, bad_request

Column = dict[str, Any]
Cells = Callable[[dict[str, Any]], list[Any]]

_NAME_COLUMN: Column = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
_AGE_COLUMN: Column = {
    "name": "Age",
    "type": "string",
    "format": "",
    "description": "CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
    "priority": 0,
}


def _column(name: str, kind: str, description: str, priority: int = 0) -> Column:
    return {
        "name": name,
        "type": kind,
        "format": "",
        "description": description,
        "priority": priority,
    }


def human_duration(seconds: float) -> str:
    """A duration as upstream's ``duration.HumanDuration`` writes it (at most two units)."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{hours // 24 // 365}y"


def age(obj: Mapping[str, Any], now: datetime.datetime | None = None) -> str:
    """The AGE cell: time since ``creationTimestamp``, or ``<unknown>``."""
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    try:
        created = datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    now = now or datetime.datetime.now(datetime.UTC)
    return human_duration((now - created).total_seconds())


def _external_ip(spec: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    """Upstream's getServiceExternalIP."""
    kind = spec.get("type") or "ClusterIP"
    external = [str(ip) for ip in spec.get("externalIPs") or []]
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        addresses = [str(i.get("ip") or i.get("hostname") or "") for i in ingress]
        addresses = [a for a in addresses if a] + external
        return ",".join(addresses) if addresses else "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def _ports(spec: Mapping[str, Any]) -> str:
    """Upstream's makePortString: ``80/TCP``, ``80:30080/TCP`` with a node port."""
    pieces = []
    for port in spec.get("ports") or []:
        protocol = port.get("protocol") or "TCP"
        if port.get("nodePort"):
            pieces.append(f"{port.get('port')}:{port['nodePort']}/{protocol}")
        else:
            pieces.append(f"{port.get('port')}/{protocol}")
    return ",".join(pieces) if pieces else "<none>"


def _selector(spec: Mapping[str, Any]) -> str:
    selector = spec.get("selector") or {}
    return ",".join(f"{k}={selector[k]}" for k in sorted(selector)) or "<none>"


def _service(obj: dict[str, Any]) -> list[Any]:
    spec = obj.get("spec") or {}
    return [
        obj["metadata"]["name"],
        spec.get("type") or "ClusterIP",
        spec.get("clusterIP") or "<none>",
        _external_ip(spec, obj.get("status") or {}),
        _ports(spec),
        age(obj),
        _selector(spec),
    ]


def _configmap(obj: dict[str, Any]) -> list[Any]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [obj["metadata"]["name"], count, age(obj)]


def _lease(obj: dict[str, Any]) -> list[Any]:
    holder = (obj.get("spec") or {}).get("holderIdentity") or ""
    return [obj["metadata"]["name"], holder, age(obj)]


def _namespace(obj: dict[str, Any]) -> list[Any]:
    phase = (obj.get("status") or {}).get("phase") or ""
    return [obj["metadata"]["name"], phase, age(obj)]


def _created_at(obj: dict[str, Any]) -> list[Any]:
    return [obj["metadata"]["name"], (obj.get("metadata") or {}).get("creationTimestamp")]


_PRINTERS: Mapping[str, tuple[list[Column], Cells]] = {
    "services": (
        [
            _NAME_COLUMN,
            _column("Type", "string", "The type of the service."),
            _column("Cluster-IP", "string", "The cluster IP of the service."),
            _column("External-IP", "string", "The external IPs of the service."),
            _column("Port(s)", "string", "The ports the service exposes."),
            _AGE_COLUMN,
            _column("Selector", "string", "The label selector of the service.", priority=1),
        ],
        _service,
    ),
    "configmaps": (
        [_NAME_COLUMN, _column("Data", "integer", "The number of keys."), _AGE_COLUMN],
        _configmap,
    ),
    "leases": (
        [_NAME_COLUMN, _column("Holder", "string", "The holder of the lease."), _AGE_COLUMN],
        _lease,
    ),
    "namespaces": (
        [
            _NAME_COLUMN,
            _column("Status", "string", "The status of the namespace."),
            _AGE_COLUMN,
        ],
        _namespace,
    ),
}
_DEFAULT: tuple[list[Column], Cells] = (
    [
        _NAME_COLUMN,
        {
            **_column("Created At", "date", "When the object was created."),
            "format": "",
        },
    ],
    _created_at,
)


def wants_table(accept: str) -> bool:
    """Whether an ``Accept`` header asks for a ``meta.k8s.io`` Table (any offered type)."""
    for offer in accept.split(","):
        params = dict(
            (part.split("=", 1)[0].strip(), part.split("=", 1)[1].strip())
            for part in offer.split(";")[1:]
            if "=" in part
        )
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


_INCLUDE = ("None", "Metadata", "Object")


def include_option(query: Mapping[str, str]) -> str:
    """The ``includeObject`` parameter (default ``Metadata``, as upstream).

    Raises:
        ApiError: 400 for a value other than None, Metadata or Object.
    """
    value = query.get("includeObject") or "Metadata"
    if value not in _INCLUDE:
        raise bad_request(
            f'includeObject: Unsupported value: "{value}": supported values: "Metadata", '
            '"None", "Object"'
        )
    return value


def _row_object(res: ResourceType, obj: dict[str, Any], include: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return {"kind": res.kind, "apiVersion": res.api_version, **obj}
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def _row(res: ResourceType, obj: dict[str, Any], include: str) -> dict[str, Any]:
    _, cells = _PRINTERS.get(res.plural, _DEFAULT)
    row: dict[str, Any] = {"cells": cells(obj)}
    embedded = _row_object(res, obj, include)
    if embedded is not None:
        row["object"] = embedded
    return row


def columns(res: ResourceType) -> list[Column]:
    """The column definitions of a resource."""
    return [dict(c) for c in _PRINTERS.get(res.plural, _DEFAULT)[0]]


def table(
    res: ResourceType,
    objects: list[dict[str, Any]],
    list_meta: Mapping[str, Any],
    include: str,
    with_columns: bool = True,
) -> dict[str, Any]:
    """A ``Table`` of objects (a list page, one object, or one watch event's object)."""
    out: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta),
    }
    if with_columns:
        out["columnDefinitions"] = columns(res)
    out["rows"] = [_row(res, obj, include) for obj in objects]
    return out
