"""The OpenAPI documents of the served kinds, generated from the pinned ``kubernetes`` client.

The client's model classes know every field of every kind: its JSON name,
its type, whether it is required and its description. Walking them from the
served kinds gives the ``definitions`` a real API server publishes, named as
it names them (``io.k8s.api.core.v1.ServicePort``). What the models do not
know, the list semantics that strategic merge patch and server-side apply
follow, is the table :data:`LIST_RULES` below; the kind of every top-level
type is added as ``x-kubernetes-group-version-kind``.

The same definitions serve three readers: ``/openapi/v2`` (JSON, or the
protobuf kubectl asks for, see :mod:`.openapi_proto`), ``/openapi/v3`` (one
document per group-version) and :mod:`.strategic`, which looks up patch
strategies and merge keys here, as the real server does.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import typing
from collections.abc import Mapping
from typing import Any

import attrs

from dyntoolset.testing.apiserver.resources import RESOURCES, ResourceType

_META_PACKAGE = "io.k8s.apimachinery.pkg.apis.meta.v1"
#: Types that live in apimachinery's meta/v1 package, whichever kind reaches them.
_META_TYPES = frozenset(
    {
        "ObjectMeta",
        "ListMeta",
        "ManagedFieldsEntry",
        "OwnerReference",
        "Status",
        "StatusDetails",
        "StatusCause",
        "Condition",
        "ShardInfo",
    }
)


@attrs.frozen
class ListRule:
    """How a list field merges: the ``x-kubernetes-*`` extensions of the real schema.

    ``strategy`` is the strategic-merge-patch strategy (``merge`` or ``""`` for
    replace), ``merge_key`` the key list items are matched by, ``list_type``
    ``atomic``, ``set`` or ``map`` (server-side apply), ``map_keys`` the keys
    of a ``map`` list.
    """

    strategy: str = ""
    merge_key: str = ""
    list_type: str = "atomic"
    map_keys: tuple[str, ...] = ()

    def extensions(self) -> dict[str, Any]:
        """The vendor extensions of the field, as the real schema spells them."""
        out: dict[str, Any] = {"x-kubernetes-list-type": self.list_type}
        if self.map_keys:
            out["x-kubernetes-list-map-keys"] = list(self.map_keys)
        if self.merge_key:
            out["x-kubernetes-patch-merge-key"] = self.merge_key
        if self.strategy:
            out["x-kubernetes-patch-strategy"] = self.strategy
        return out


_BY_TYPE = ListRule("merge", "type", "map", ("type",))

#: The list fields of the served kinds whose semantics are not "atomic, replaced
#: whole", keyed by (definition, JSON field), as upstream's Go struct tags declare them.
LIST_RULES: Mapping[tuple[str, str], ListRule] = {
    ("io.k8s.api.core.v1.ServiceSpec", "ports"): ListRule(
        "merge", "port", "map", ("port", "protocol")
    ),
    ("io.k8s.api.core.v1.ServiceStatus", "conditions"): _BY_TYPE,
    ("io.k8s.api.core.v1.NamespaceStatus", "conditions"): _BY_TYPE,
    (f"{_META_PACKAGE}.ObjectMeta", "finalizers"): ListRule("merge", "", "set"),
    (f"{_META_PACKAGE}.ObjectMeta", "ownerReferences"): ListRule("merge", "uid", "map", ("uid",)),
}

_SCALARS: Mapping[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer", "format": "int32"},
    "float": {"type": "number", "format": "double"},
    "bool": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "bytes": {"type": "string", "format": "byte"},
}
# Where the real schema says int64 (the client's models say only "int").
_INT64 = frozenset({"generation", "deletionGracePeriodSeconds", "remainingItemCount"})
#: Named scalar types: the real schema refers to them rather than inlining them.
_NAMED_SCALARS: Mapping[str, dict[str, Any]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in "
        "JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  "
        "This allows you to have, for example, a JSON field that can accept a name or number.",
        "type": "string",
        "format": "int-or-string",
    },
    f"{_META_PACKAGE}.Time": {
        "description": "Time is a wrapper around time.Time which supports correct marshaling "
        "to YAML and JSON.  Wrappers are provided for many of the factory methods that the "
        "time package offers.",
        "type": "string",
        "format": "date-time",
    },
}
_TYPE_REFS = {
    "int-or-string": "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    "datetime": f"{_META_PACKAGE}.Time",
}


def _models() -> Any:
    from kubernetes.client import models  # heavy: imported when first asked

    return models


def _description(cls: type) -> str:
    text = (cls.__doc__ or "").split("Attributes:")[0]
    return " ".join(text.split())


def _package(resource: ResourceType) -> str:
    group = resource.group.split(".")[0] if resource.group else "core"
    return f"io.k8s.api.{group}.{resource.version}"


class _Builder:
    """Walks model classes from the served kinds, collecting definitions."""

    def __init__(self) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}
        self.names: dict[str, str] = {}  # model class name -> definition name

    def name_for(self, model: str, package: str) -> str:
        short = model.removeprefix("V1")
        if short in _META_TYPES:
            return f"{_META_PACKAGE}.{short}"
        return f"{package}.{short}"

    def add(self, model: str, package: str) -> str:
        """Add the definition of ``model`` (and what it references); its name."""
        if model in self.names:
            return self.names[model]
        name = self.name_for(model, package)
        self.names[model] = name
        cls = getattr(_models(), model)
        properties: dict[str, Any] = {}
        required: list[str] = []
        # Model fields named after a Python keyword or builtin are renamed
        # ("continue" -> var_continue) and carry the JSON name as their alias.
        by_json = {(f.serialization_alias or f.alias or n): f for n, f in cls.model_fields.items()}
        for attr, type_name in cls.openapi_types.items():
            json_name = cls.attribute_map[attr]
            info = by_json[json_name]
            prop = self.type_schema(type_name, info.annotation, package, json_name)
            if info.description:
                prop = {"description": info.description, **prop}
            rule = LIST_RULES.get((name, json_name))
            if rule is not None:
                prop.update(rule.extensions())
            elif prop.get("type") == "array":
                prop["x-kubernetes-list-type"] = "atomic"
            properties[json_name] = prop
            if info.is_required():
                required.append(json_name)
        definition: dict[str, Any] = {"description": _description(cls), "type": "object"}
        definition["properties"] = dict(sorted(properties.items()))
        if required:
            definition["required"] = sorted(required)
        self.definitions[name] = definition
        return name

    def type_schema(
        self, type_name: str, annotation: Any, package: str, json_name: str
    ) -> dict[str, Any]:
        if type_name.startswith("List[") and type_name.endswith("]"):
            inner = self.type_schema(type_name[5:-1], None, package, json_name)
            return {"type": "array", "items": inner}
        if type_name.startswith("Dict[str, ") and type_name.endswith("]"):
            inner = self.type_schema(type_name[10:-1], None, package, json_name)
            return {"type": "object", "additionalProperties": inner}
        if type_name == "int" and json_name in _INT64:
            return {"type": "integer", "format": "int64"}
        if type_name == "object" and {int, str} <= set(_flatten(annotation)):
            # The client types IntOrString as "object"; its annotation says int | str.
            type_name = "int-or-string"
        if type_name in _TYPE_REFS:
            name = _TYPE_REFS[type_name]
            self.definitions[name] = dict(_NAMED_SCALARS[name])
            return {"$ref": name}
        if type_name in _SCALARS:
            return dict(_SCALARS[type_name])
        if type_name == "object":
            return {"type": "object"}
        return {"$ref": self.add(type_name, package)}


def _flatten(annotation: Any) -> list[Any]:
    """The plain types inside an annotation (Optional, Union, Annotated unwrapped)."""
    if annotation is None:
        return []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin is not None:
        return [t for arg in typing.get_args(annotation) for t in _flatten(arg)]
    return [annotation]


def _gvk(resource: ResourceType, kind: str) -> list[dict[str, str]]:
    return [{"group": resource.group, "kind": kind, "version": resource.version}]


@functools.cache
def definitions() -> Mapping[str, dict[str, Any]]:
    """Every definition the served kinds use, keyed by its upstream name (v2 ``$ref`` form).

    References are bare names here; :func:`swagger_v2` and :func:`openapi_v3`
    turn them into ``#/definitions/...`` and ``#/components/schemas/...``.
    """
    builder = _Builder()
    for resource in RESOURCES:
        package = _package(resource)
        kinds = [resource.kind] + ([f"{resource.kind}List"] if resource.stored else [])
        for kind in kinds:
            name = builder.add(f"V1{kind}", package)
            builder.definitions[name]["x-kubernetes-group-version-kind"] = _gvk(resource, kind)
    builder.add("V1Status", _META_PACKAGE)
    return dict(sorted(builder.definitions.items()))


_warming = threading.Lock()
_warmed = False


def warm_up() -> None:
    """Build :func:`definitions` in the background, once per process.

    Building them imports some forty of the client's model classes (about a
    second): done on the first strategic patch or OpenAPI request instead, it
    would stall that request long enough to trip a client's short timeout.
    """
    global _warmed
    with _warming:
        if _warmed:
            return
        _warmed = True
    threading.Thread(target=definitions, name="apiserver-emulator:openapi", daemon=True).start()


def definition_of(resource: ResourceType) -> str:
    """The definition name of a served kind (``io.k8s.api.core.v1.Service``)."""
    for name, definition in definitions().items():
        for gvk in definition.get("x-kubernetes-group-version-kind", ()):
            if (gvk["group"], gvk["version"], gvk["kind"]) == (
                resource.group,
                resource.version,
                resource.kind,
            ):
                return name
    raise KeyError(resource.kind)


def _with_refs(node: Any, prefix: str, wrap: bool = False) -> Any:
    """References as the document spells them (``prefix`` + name).

    With ``wrap`` (OpenAPI 3), a reference with siblings (a description) becomes
    ``allOf: [{$ref}]``, as upstream writes it: 3.0 ignores siblings of ``$ref``.
    """
    if isinstance(node, dict):
        out = {k: _with_refs(v, prefix, wrap) for k, v in node.items() if k != "$ref"}
        if "$ref" in node and wrap and out:
            out["allOf"] = [{"$ref": prefix + node["$ref"]}]
        elif "$ref" in node:
            out["$ref"] = prefix + node["$ref"]
        return out
    if isinstance(node, list):
        return [_with_refs(v, prefix, wrap) for v in node]
    return node


def _info(version: str) -> dict[str, str]:
    return {"title": "Kubernetes", "version": version}


@functools.cache
def swagger_v2(version: str) -> dict[str, Any]:
    """The ``/openapi/v2`` document (Swagger 2.0) of every served kind."""
    return {
        "swagger": "2.0",
        "info": _info(version),
        "paths": {},
        "definitions": _with_refs(dict(definitions()), "#/definitions/"),
    }


def group_version_path(resource: ResourceType) -> str:
    """The path of a group-version under ``/openapi/v3`` (``api/v1``, ``apis/g/v``)."""
    return f"apis/{resource.group}/{resource.version}" if resource.group else "api/v1"


def _reachable(roots: list[str]) -> list[str]:
    seen: list[str] = []
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        todo.extend(_refs(definitions()[name]))
    return sorted(seen)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@functools.cache
def openapi_v3(path: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group-version (``api/v1``), or None if not served."""
    roots = [
        name
        for resource in RESOURCES
        if group_version_path(resource) == path
        for name, definition in definitions().items()
        if any(
            (g["group"], g["version"]) == (resource.group, resource.version)
            for g in definition.get("x-kubernetes-group-version-kind", ())
        )
    ]
    if not roots:
        return None
    # Status: what delete operations answer.
    schemas = {
        name: definitions()[name] for name in _reachable([*roots, f"{_META_PACKAGE}.Status"])
    }
    paths: dict[str, Any] = {}
    for resource in RESOURCES:
        if group_version_path(resource) == path:
            paths.update(_resource_paths(resource))
    return {
        "openapi": "3.0.0",
        "info": _info(version),
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": _with_refs(schemas, "#/components/schemas/", wrap=True)},
    }


#: Query parameters of each verb. ``fieldValidation`` is deliberately absent: the
#: emulator does not validate unknown fields, so kubectl must validate on its side
#: (it does, with the v2 schema, when a PATCH operation does not list the parameter).
_QUERY_PARAMETERS: Mapping[str, tuple[str, ...]] = {
    "list": (
        "allowWatchBookmarks",
        "continue",
        "fieldSelector",
        "labelSelector",
        "limit",
        "resourceVersion",
        "resourceVersionMatch",
        "timeoutSeconds",
        "watch",
    ),
    "get": (),
    "create": ("fieldManager",),
    "update": ("fieldManager",),
    "patch": ("fieldManager", "force"),
    "delete": (),
    "deletecollection": ("labelSelector", "fieldSelector"),
}
_METHODS = {
    "list": "get",
    "get": "get",
    "create": "post",
    "update": "put",
    "patch": "patch",
    "delete": "delete",
    "deletecollection": "delete",
}
_PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def _operation(resource: ResourceType, verb: str) -> dict[str, Any]:
    kind_ref = {"$ref": f"#/components/schemas/{definition_of(resource)}"}
    if verb == "list":
        list_name = definition_of(resource) + "List"
        body_ref = {"$ref": f"#/components/schemas/{list_name}"}
    elif verb in ("delete", "deletecollection"):
        body_ref = {"$ref": f"#/components/schemas/{_META_PACKAGE}.Status"}
    else:
        body_ref = kind_ref
    operation: dict[str, Any] = {
        "operationId": f"{verb}{resource.kind}",
        "parameters": [
            {"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
            for name in _QUERY_PARAMETERS[verb]
        ],
        "responses": {"200": {"content": {"application/json": {"schema": body_ref}}}},
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": _gvk(resource, resource.kind)[0],
    }
    if verb in ("create", "update"):
        operation["requestBody"] = {"content": {"*/*": {"schema": kind_ref}}, "required": True}
    elif verb == "patch":
        operation["requestBody"] = {
            "content": {t: {"schema": {"type": "object"}} for t in _PATCH_TYPES},
            "required": True,
        }
    return operation


def _resource_paths(resource: ResourceType) -> dict[str, Any]:
    """The REST paths of one resource, each operation tagged with its kind (as upstream)."""
    prefix = f"/{group_version_path(resource)}"
    if resource.namespaced:
        collection = f"{prefix}/namespaces/{{namespace}}/{resource.plural}"
    else:
        collection = f"{prefix}/{resource.plural}"
    verbs = set(resource.verbs)
    if resource.stored:
        verbs.add("deletecollection")
    collection_ops = {
        _METHODS[verb]: _operation(resource, verb)
        for verb in ("list", "create", "deletecollection")
        if verb in verbs
    }
    item_ops = {
        _METHODS[verb]: _operation(resource, verb)
        for verb in ("get", "update", "patch", "delete")
        if verb in verbs
    }
    paths = {collection: collection_ops}
    if item_ops:
        paths[f"{collection}/{{name}}"] = item_ops
    return paths


def _hash(document: Any) -> str:
    raw = json.dumps(document, sort_keys=True).encode()
    return hashlib.sha512(raw).hexdigest()[:128].upper()


@functools.cache
def openapi_v3_index(version: str) -> dict[str, Any]:
    """The ``/openapi/v3`` index: one entry per served group-version, with its hash."""
    paths: dict[str, Any] = {}
    for path in sorted({group_version_path(r) for r in RESOURCES}):
        document = openapi_v3(path, version)
        assert document is not None
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(document)}"}
    return {"paths": paths}
