"""What the real server's typed decoding refuses: a value of the wrong JSON type for a field.

The API server decodes a body into Go structs before anything else looks at
it, so ``metadata.name: 5`` or ``metadata: 5`` never reaches validation: it is
a decoding error, worded as Go's ``encoding/json`` words it (``json: cannot
unmarshal number into Go struct field ObjectMeta.metadata.name of type
string``). The emulator keeps objects as plain dicts, so this module carries
the Go types of the fields of the served kinds (unknown fields are dropped by
the real decoder and are left alone here) and reports the first mismatch.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import attrs

from dyntoolset.testing.apiserver.resources import ApiError, ResourceType, bad_request

_INT_RANGES = {"int32": 2**31, "int64": 2**63}


@attrs.frozen
class Scalar:
    """A Go scalar: ``string``, ``bool``, ``int32`` or ``int64``."""

    go: str


@attrs.frozen
class Bytes:
    """A Go ``[]byte``: a base64 string in JSON."""

    go: str = "[]uint8"


@attrs.frozen
class IntOrString:
    """``intstr.IntOrString``: an int32 or a string."""

    go: str = "intstr.IntOrString"


@attrs.frozen
class MapOf:
    """A Go ``map[string]T``."""

    value: Any
    go: str


@attrs.frozen
class ListOf:
    """A Go slice."""

    item: Any
    go: str


@attrs.frozen
class Struct:
    """A Go struct: its name as errors print it and its JSON fields."""

    name: str
    fields: dict[str, Any]
    package: str = "v1"

    @property
    def go(self) -> str:
        """The qualified type name, as in ``of type v1.ObjectMeta``."""
        return f"{self.package}.{self.name}"


#: Fields not described are not checked (the real decoder drops unknown ones).
ANY = None
STRING = Scalar("string")
BOOL = Scalar("bool")
INT32 = Scalar("int32")
INT64 = Scalar("int64")
STRINGS = ListOf(STRING, "[]string")
STRING_MAP = MapOf(STRING, "map[string]string")

OBJECT_META = Struct(
    "ObjectMeta",
    {
        "name": STRING,
        "generateName": STRING,
        "namespace": STRING,
        "selfLink": STRING,
        "uid": STRING,
        "resourceVersion": STRING,
        "generation": INT64,
        "creationTimestamp": STRING,
        "deletionTimestamp": STRING,
        "deletionGracePeriodSeconds": INT64,
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
        "finalizers": STRINGS,
        "ownerReferences": ListOf(
            Struct(
                "OwnerReference",
                {
                    "apiVersion": STRING,
                    "kind": STRING,
                    "name": STRING,
                    "uid": STRING,
                    "controller": BOOL,
                    "blockOwnerDeletion": BOOL,
                },
            ),
            "[]v1.OwnerReference",
        ),
        "managedFields": ListOf(
            Struct(
                "ManagedFieldsEntry",
                {
                    "manager": STRING,
                    "operation": STRING,
                    "apiVersion": STRING,
                    "time": STRING,
                    "fieldsType": STRING,
                    "subresource": STRING,
                },
            ),
            "[]v1.ManagedFieldsEntry",
        ),
    },
)

_SERVICE_PORT = Struct(
    "ServicePort",
    {
        "name": STRING,
        "protocol": STRING,
        "appProtocol": STRING,
        "port": INT32,
        "targetPort": IntOrString(),
        "nodePort": INT32,
    },
)

_KINDS: dict[str, dict[str, Any]] = {
    "Service": {
        "spec": Struct(
            "ServiceSpec",
            {
                "ports": ListOf(_SERVICE_PORT, "[]v1.ServicePort"),
                "selector": STRING_MAP,
                "clusterIP": STRING,
                "clusterIPs": STRINGS,
                "type": STRING,
                "externalIPs": STRINGS,
                "sessionAffinity": STRING,
                "loadBalancerIP": STRING,
                "loadBalancerSourceRanges": STRINGS,
                "externalName": STRING,
                "externalTrafficPolicy": STRING,
                "healthCheckNodePort": INT32,
                "publishNotReadyAddresses": BOOL,
                "ipFamilies": STRINGS,
                "ipFamilyPolicy": STRING,
                "allocateLoadBalancerNodePorts": BOOL,
                "loadBalancerClass": STRING,
                "internalTrafficPolicy": STRING,
                "trafficDistribution": STRING,
            },
        ),
        "status": Struct("ServiceStatus", {"loadBalancer": ANY, "conditions": ANY}),
    },
    "ConfigMap": {
        "data": STRING_MAP,
        "binaryData": MapOf(Bytes(), "map[string][]uint8"),
        "immutable": BOOL,
    },
    "Namespace": {
        "spec": Struct("NamespaceSpec", {"finalizers": STRINGS}),
        "status": Struct("NamespaceStatus", {"phase": STRING, "conditions": ANY}),
    },
    "Lease": {
        "spec": Struct(
            "LeaseSpec",
            {
                "holderIdentity": STRING,
                "leaseDurationSeconds": INT32,
                "acquireTime": STRING,
                "renewTime": STRING,
                "leaseTransitions": INT32,
                "strategy": STRING,
                "preferredHolder": STRING,
            },
        ),
    },
}


_ATTRIBUTES = {"resourceAttributes", "nonResourceAttributes"}
_ACCESS_SPEC = {
    "resourceAttributes": Struct(
        "ResourceAttributes",
        {
            key: STRING
            for key in ("namespace", "verb", "group", "version", "resource", "subresource", "name")
        },
    ),
    "nonResourceAttributes": Struct("NonResourceAttributes", {"path": STRING, "verb": STRING}),
    "user": STRING,
    "groups": STRINGS,
    "uid": STRING,
    "extra": MapOf(STRINGS, "map[string]v1.ExtraValue"),
}
#: The bodies that are not stored objects: reviews and the options of a delete.
_OTHER_KINDS: dict[str, dict[str, Any]] = {
    "TokenReview": {
        "spec": Struct("TokenReviewSpec", {"token": STRING, "audiences": STRINGS}),
    },
    "SubjectAccessReview": {"spec": Struct("SubjectAccessReviewSpec", _ACCESS_SPEC)},
    "SelfSubjectAccessReview": {
        "spec": Struct(
            "SelfSubjectAccessReviewSpec",
            {k: v for k, v in _ACCESS_SPEC.items() if k in _ATTRIBUTES},
        )
    },
    "SelfSubjectReview": {},
    "DeleteOptions": {
        "gracePeriodSeconds": INT64,
        "preconditions": Struct("Preconditions", {"uid": STRING, "resourceVersion": STRING}),
        "orphanDependents": BOOL,
        "propagationPolicy": STRING,
        "dryRun": STRINGS,
    },
}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _mismatch(value: Any, expected: Any) -> str | None:
    """What is wrong with one value against a type (its children not included)."""
    if value is None or expected is ANY:
        return None  # null leaves a Go field at its zero value
    kind = _json_kind(value)
    if isinstance(expected, Scalar) and expected.go in _INT_RANGES:
        if kind != "number":
            return kind
        bound = _INT_RANGES[expected.go]
        if isinstance(value, float) or not -bound <= value < bound:
            return f"number {value}"
        return None
    if isinstance(expected, IntOrString):
        if kind == "number":
            return _mismatch(value, INT32)
        return None if kind == "string" else kind
    wanted = {
        "string": "string",
        "bool": "bool",
        "[]uint8": "string",
    }.get(expected.go)
    if isinstance(expected, Struct | MapOf):
        wanted = "object"
    elif isinstance(expected, ListOf):
        wanted = "array"
    return None if kind == wanted else kind


def _first_error(value: Any, expected: Any, owner: str, path: str) -> str | None:
    problem = _mismatch(value, expected)
    if problem is not None:
        return (
            f"json: cannot unmarshal {problem} into Go struct field {owner}.{path} "
            f"of type {expected.go}"
        )
    if value is None:
        return None
    if isinstance(expected, Bytes):
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return "illegal base64 data in " + path
    elif isinstance(expected, Struct):
        for key, child_type in expected.fields.items():
            if key in value:
                found = _first_error(value[key], child_type, expected.name, f"{path}.{key}")
                if found:
                    return found
    elif isinstance(expected, MapOf):
        for child in value.values():
            found = _first_error(child, expected.value, owner, path)
            if found:
                return found
    elif isinstance(expected, ListOf):
        for child in value:
            found = _first_error(child, expected.item, owner, path)
            if found:
                return found
    return None


def decoding_error(res: ResourceType | str, obj: Any) -> str | None:
    """Go's decoding error for ``obj`` as a ``res`` object (or kind), or None when it decodes."""
    kind = res if isinstance(res, str) else res.kind
    if not isinstance(obj, dict):
        return f"json: cannot unmarshal {_json_kind(obj)} into Go value of type {kind}"
    top = Struct(kind, {"apiVersion": STRING, "kind": STRING, "metadata": OBJECT_META})
    top.fields.update(_KINDS.get(kind) or _OTHER_KINDS.get(kind) or {})
    for key, expected in top.fields.items():
        if key in obj:
            found = _first_error(obj[key], expected, kind, key)
            if found:
                return found
    return None


def check_body(res: ResourceType, obj: Any, kind: str | None = None) -> None:
    """Refuse a body that does not decode, as the real server does.

    ``kind`` names a body that is not the resource's object: ``DeleteOptions``.

    Raises:
        ApiError: 400 ``… in version "v1" cannot be handled as a …``.
    """
    kind = kind or res.kind
    problem = decoding_error(kind, obj)
    if problem is not None:
        raise bad_request(
            f'{kind} in version "{res.version}" cannot be handled as a {kind}: {problem}'
        )


def check_applied(res: ResourceType, applied: Any) -> None:
    """Refuse a server-side apply configuration that does not decode.

    Raises:
        ApiError: 400 ``failed to create typed patch object``.
    """
    problem = decoding_error(res, applied)
    if problem is not None:
        gv = f"{res.group}/{res.version}" if res.group else f"/{res.version}"
        raise bad_request(f"failed to create typed patch object ({gv}, Kind={res.kind}): {problem}")


def check_patched(res: ResourceType, patched: Any, rendered: str) -> None:
    """Refuse the result of a JSON or merge patch that does not decode.

    The real server answers 422 ``Invalid`` on the field ``patch``, whose
    value is the patched document (``rendered``).

    Raises:
        ApiError: 422.
    """
    problem = decoding_error(res, patched)
    if problem is None:
        return
    body = f"Invalid value: {json.dumps(rendered)}: {problem}"
    raise ApiError(
        422,
        "Invalid",
        f' "" is invalid: patch: {body}',
        {"causes": [{"reason": "FieldValueInvalid", "message": body, "field": "patch"}]},
    )
