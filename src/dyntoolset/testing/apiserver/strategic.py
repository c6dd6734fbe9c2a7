"""Strategic merge patch (``application/strategic-merge-patch+json``), as the API server applies it.

A strategic merge patch is a JSON merge patch whose lists are not always
replaced: a list field whose schema says ``x-kubernetes-patch-strategy:
merge`` merges item by item, maps matched by their
``x-kubernetes-patch-merge-key`` (Service ``spec.ports`` by ``port``,
``ownerReferences`` by ``uid``), scalars as a set (``finalizers``). The
schema is the emulator's own OpenAPI (:mod:`.openapi`), the one kubectl
reads to compute the patch. Directives, all honoured:

- ``$patch: replace`` (in a map: replace it whole; as a list item: replace the list),
  ``$patch: delete`` (in a map: empty it; as a list item: delete the item with
  that merge key), ``$patch: merge`` (the default);
- ``$setElementOrder/<list>``: the order of the merged list (items only the
  server had keep their place relative to the others, as upstream merges them);
- ``$retainKeys``: keys of the map not listed are dropped before merging;
- ``$deleteFromPrimitiveList/<list>``: scalars to remove from a merge list.

Fields the schema does not know (labels, data) merge like a JSON merge patch.
Errors name the problem, with upstream's codes: 400 ``BadRequest`` for a
malformed patch, 422 ``Invalid`` for a patched key missing from ``$retainKeys``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from dyntoolset.testing.apiserver import openapi
from dyntoolset.testing.apiserver.resources import ApiError, ResourceType, bad_request

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"
_DIRECTIVES = ("merge", "replace", "delete")

#: A position in the schema: a definition (its ``properties``), or None where
#: nothing is known (free maps, unknown fields): those merge as JSON merge patch.
Schema = Mapping[str, Any] | None


def patch_object(resource: ResourceType, current: dict[str, Any], patch: Any) -> dict[str, Any]:
    """``current`` with the strategic merge ``patch`` applied (``current`` is not changed).

    Raises:
        ApiError: 400 for a patch that is not a JSON object, names an unknown
            directive, lacks a merge key, or breaks a ``$retainKeys`` list.
    """
    if not isinstance(patch, dict):
        raise bad_request("a strategic merge patch must be a JSON object")
    schema = openapi.definitions()[openapi.definition_of(resource)]
    return merge_map(copy.deepcopy(current), patch, schema)


def _property(schema: Schema, key: str) -> Mapping[str, Any] | None:
    if schema is None:
        return None
    prop = (schema.get("properties") or {}).get(key)
    return prop if isinstance(prop, Mapping) else None


def _resolve(node: Mapping[str, Any] | None) -> Schema:
    """The definition a property or list item refers to, if any."""
    if node is None or "$ref" not in node:
        return None
    return openapi.definitions().get(node["$ref"])


def merge_map(original: dict[str, Any], patch: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """Merge ``patch`` into ``original`` (changed in place and returned)."""
    directive = patch.get(_PATCH, "merge")
    if directive not in _DIRECTIVES:
        raise bad_request(f"unknown patch type: {directive} in map: {dict(patch)}")
    if directive == "replace":
        return merge_map({}, {k: v for k, v in patch.items() if k != _PATCH}, schema)
    if directive == "delete":
        return {}
    retain = patch.get(_RETAIN)
    if retain is not None:
        if not isinstance(retain, list):
            raise bad_request(f"invalid $retainKeys: {retain!r}: must be a list of field names")
        for key in patch:
            if not key.startswith("$") and key not in retain and patch[key] is not None:
                raise ApiError(
                    422,
                    "Invalid",
                    f"patch: Invalid value: the key {key!r} in the patch is not present "
                    f"in the $retainKeys list {retain}",
                )
        for key in list(original):
            if key not in retain:
                del original[key]
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVE):
            field = key.removeprefix(_DELETE_PRIMITIVE)
            if not isinstance(value, list):
                raise bad_request(f"invalid {key}: must be a list of values to delete")
            if isinstance(original.get(field), list):
                original[field] = [v for v in original[field] if v not in value]
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        prop = _property(schema, key)
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict):
            base = original.get(key)
            original[key] = merge_map(base if isinstance(base, dict) else {}, value, _resolve(prop))
        elif isinstance(value, list):
            base = original.get(key)
            merged = merge_list(base if isinstance(base, list) else [], value, prop)
            order = patch.get(_ORDER + key)
            if order is not None:
                merged = _ordered(merged, base if isinstance(base, list) else [], order, prop)
            original[key] = merged
        else:
            original[key] = value
    for key, order in patch.items():
        # An order for a list the patch does not otherwise touch still reorders it.
        if key.startswith(_ORDER) and key.removeprefix(_ORDER) not in patch:
            field = key.removeprefix(_ORDER)
            if isinstance(original.get(field), list):
                prop = _property(schema, field)
                original[field] = _ordered(original[field], original[field], order, prop)
    return original


def _merge_key(prop: Mapping[str, Any] | None) -> tuple[bool, str]:
    """Whether the list merges, and by which key (``""`` for a list of scalars)."""
    if prop is None or prop.get("x-kubernetes-patch-strategy", "") != "merge":
        return False, ""
    return True, str(prop.get("x-kubernetes-patch-merge-key", ""))


def merge_list(original: list[Any], patch: list[Any], prop: Mapping[str, Any] | None) -> list[Any]:
    """Merge a patch list into the original one according to the field's strategy."""
    merges, key = _merge_key(prop)
    item_schema = _resolve((prop or {}).get("items"))
    if not merges:
        return [strip_directives(v, item_schema) for v in patch]
    if not key:
        merged = list(original)
        for value in patch:
            if isinstance(value, dict):
                raise bad_request(
                    f"invalid patch: a list of scalars got a map item {value!r}; "
                    "use $deleteFromPrimitiveList to delete values"
                )
            if value not in merged:
                merged.append(value)
        return merged
    if any(isinstance(v, dict) and v.get(_PATCH) == "replace" for v in patch):
        return [
            strip_directives(v, item_schema)
            for v in patch
            if not (isinstance(v, dict) and v.get(_PATCH) == "replace")
        ]
    merged = [copy.deepcopy(v) for v in original]
    for value in patch:
        if not isinstance(value, dict):
            raise bad_request(
                f"invalid patch: expected a map with merge key {key!r}, got {value!r}"
            )
        if key not in value:
            raise bad_request(f"map: {value} does not contain declared merge key: {key}")
        index = next(
            (
                i
                for i, item in enumerate(merged)
                if isinstance(item, dict) and item.get(key) == value[key]
            ),
            None,
        )
        directive = value.get(_PATCH, "merge")
        if directive == "delete":
            merged = [
                item
                for item in merged
                if not (isinstance(item, dict) and item.get(key) == value[key])
            ]
        elif directive not in _DIRECTIVES:
            raise bad_request(f"unknown patch type: {directive} in map: {value}")
        elif index is None:
            merged.append(strip_directives(value, item_schema))
        else:
            merged[index] = merge_map(merged[index], value, item_schema)
    return merged


def _identity(item: Any, key: str) -> Any:
    return item.get(key) if key and isinstance(item, dict) else item


def _ordered(
    merged: list[Any], original: list[Any], order: Any, prop: Mapping[str, Any] | None
) -> list[Any]:
    """``merged`` in the order ``$setElementOrder`` gives, server-only items merged in.

    As upstream's ``mergeSortedSlice``: the items the order names come in its
    order; an item only the server had goes before the next named item when
    both are in the original list and it came first there.
    """
    if not isinstance(order, list):
        raise bad_request(f"invalid $setElementOrder: {order!r} must be a list")
    _, key = _merge_key(prop)
    wanted = [_identity(v, key) for v in order]
    server = [_identity(v, key) for v in original]
    named = sorted(
        (item for item in merged if _identity(item, key) in wanted),
        key=lambda item: wanted.index(_identity(item, key)),
    )
    rest = [item for item in merged if _identity(item, key) not in wanted]

    def server_first(server_only: Any, patched: Any) -> bool:
        left, right = _identity(server_only, key), _identity(patched, key)
        return left in server and right in server and server.index(left) < server.index(right)

    result: list[Any] = []
    i = j = 0
    while i < len(named) and j < len(rest):
        if server_first(rest[j], named[i]):
            result.append(rest[j])
            j += 1
        else:
            result.append(named[i])
            i += 1
    return result + named[i:] + rest[j:]


def strip_directives(value: Any, schema: Schema = None) -> Any:
    """A patch value as data: merged into nothing, so directives apply and vanish."""
    if isinstance(value, dict):
        if value.get(_PATCH) == "replace":
            value = {k: v for k, v in value.items() if k != _PATCH}
        return merge_map({}, value, schema)
    if isinstance(value, list):
        return [
            strip_directives(v)
            for v in value
            if not (isinstance(v, dict) and _PATCH in v and len(v) == 1)
        ]
    return value
