"""Patches and field ownership: JSON merge patch, JSON patch, server-side apply.

Ownership is tracked per leaf field (a path of map keys; lists are atomic)
in ``metadata.managedFields`` in the real ``FieldsV1`` format, for every write:
creates, updates and patches make their manager own what they changed
(operation ``Update``); an apply makes its manager own exactly the fields in
its configuration (operation ``Apply``), conflicts with other owners of
differing values unless forced, and removes the fields it applied before and
no longer applies when nobody else owns them.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Iterable
from typing import Any

from dyntoolset.testing.apiserver.resources import ApiError, bad_request

Path = tuple[str, ...]

_IGNORED: frozenset[Path] = frozenset(
    {
        ("apiVersion",),
        ("kind",),
        ("status",),
        ("metadata", "name"),
        ("metadata", "namespace"),
        ("metadata", "uid"),
        ("metadata", "resourceVersion"),
        ("metadata", "creationTimestamp"),
        ("metadata", "generation"),
        ("metadata", "managedFields"),
        ("metadata", "generateName"),
        ("metadata", "deletionTimestamp"),
        ("metadata", "selfLink"),
    }
)
_MISSING = object()


def now() -> str:
    """The current UTC time in the API's RFC 3339 second-precision format."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- JSON merge patch (RFC 7386) and JSON patch (RFC 6902) ----------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch; ``null`` deletes a key."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise bad_request(f"a JSON pointer must be a string, not {type(path).__name__}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(items: list[Any], part: str, adding: bool = False) -> int:
    """A list index of a JSON pointer: decimal, in range (``len`` allowed to add at the end).

    Raises:
        ApiError: 422 for anything else, as the real server's JSON patch answers.
    """
    if part == "-" and adding:
        return len(items)
    limit = len(items) + (1 if adding else 0)
    if not (part.isdecimal() and part.isascii()) or (len(part) > 1 and part[0] == "0"):
        raise _unprocessable(f"invalid array index {part[:40]!r}")
    if len(part) > 18 or int(part) >= limit:
        raise _unprocessable(f"Unable to access invalid index: {part[:40]}")
    return int(part)


def _unprocessable(problem: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f"the server rejected our request due to an error in our request: {problem}",
    )


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, list):
            node = node[_index(node, part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in "
                f"our request: missing path element {part!r}",
            )
    return node


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch (add, remove, replace, test, move, copy)."""
    if not isinstance(operations, list):
        raise bad_request("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid JSON patch operation {repr(op)[:200]}")
        name = op["op"]
        parts = _pointer(op["path"])
        try:
            if name == "move" or name == "copy":
                src = _pointer(op["from"])
                source_parent = _parent(doc, src)
                value = copy.deepcopy(
                    source_parent[
                        _index(source_parent, src[-1])
                        if isinstance(source_parent, list)
                        else src[-1]
                    ]
                )
                if name == "move":
                    doc = json_patch(doc, [{"op": "remove", "path": op["from"]}])
                doc = json_patch(doc, [{"op": "add", "path": op["path"], "value": value}])
                continue
            if not parts:
                if name in ("add", "replace"):
                    doc = copy.deepcopy(op["value"])
                    continue
                raise bad_request(f"cannot {name} the whole document")
            parent = _parent(doc, parts)
            if not isinstance(parent, dict | list):
                raise _unprocessable(f"doc is missing path: {op['path']}")
            last = parts[-1]
            if name == "test":
                actual = (
                    parent[_index(parent, last)]
                    if isinstance(parent, list)
                    else parent.get(last, _MISSING)
                )
                if actual != op.get("value"):
                    raise ApiError(
                        422,
                        "Invalid",
                        f"the server rejected our request due to an "
                        f"error in our request: testing value {op['path']} failed",
                    )
            elif name == "add":
                if isinstance(parent, list):
                    parent.insert(_index(parent, last, adding=True), copy.deepcopy(op["value"]))
                else:
                    parent[last] = copy.deepcopy(op["value"])
            elif name == "replace" or name == "remove":
                if isinstance(parent, list):
                    index = _index(parent, last)
                    if name == "remove":
                        del parent[index]
                    else:
                        parent[index] = copy.deepcopy(op["value"])
                else:
                    if last not in parent:
                        raise ApiError(
                            422,
                            "Invalid",
                            f"the server rejected our request due to "
                            f"an error in our request: missing path {op['path']}",
                        )
                    if name == "remove":
                        del parent[last]
                    else:
                        parent[last] = copy.deepcopy(op["value"])
            else:
                raise bad_request(f"unknown JSON patch operation {name!r}")
        except (IndexError, ValueError, KeyError, TypeError) as exc:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc!r}",
            ) from None
    return doc


# --- leaf paths and FieldsV1 ----------------------------------------------------------------


def leaves(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Every owned-able leaf of an object: map keys are walked, lists and scalars are leaves."""
    out: dict[Path, Any] = {}
    if not isinstance(obj, dict):
        return out
    for key, value in obj.items():
        path = (*prefix, str(key))
        if path in _IGNORED or path[:1] == ("status",):
            continue
        if isinstance(value, dict) and value:
            out.update(leaves(value, path))
        elif isinstance(value, dict):
            continue  # an empty map holds no field
        else:
            out[path] = value
    return out


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """The ``fieldsV1`` tree for a set of leaf paths."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return tree


def from_fields_v1(tree: Any, prefix: Path = ()) -> set[Path]:
    """The leaf paths in a ``fieldsV1`` tree (list-item keys count as their list)."""
    out: set[Path] = set()
    if not isinstance(tree, dict):
        return out
    for key, value in tree.items():
        if key == ".":
            continue
        if key.startswith("f:"):
            path = (*prefix, key[2:])
            children = from_fields_v1(value, path)
            if children:
                out |= children
            else:
                out.add(path)
        elif prefix:
            out.add(prefix)
    return out


def _get(obj: Any, path: Path) -> Any:
    node = obj
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _set(obj: dict[str, Any], path: Path, value: Any) -> None:
    node = obj
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = copy.deepcopy(value)


def _remove(obj: dict[str, Any], path: Path) -> None:
    chain: list[dict[str, Any]] = [obj]
    node: Any = obj
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return
        chain.append(node)
    chain[-1].pop(path[-1], None)
    # Maps emptied by the removal go too (an apply that drops the last label drops ``labels``).
    for depth in range(len(chain) - 1, 0, -1):
        if chain[depth]:
            break
        chain[depth - 1].pop(path[depth - 1], None)


# --- managed fields -------------------------------------------------------------------------


def _print_manager(entry: dict[str, Any]) -> str:
    """How upstream's printManager names a conflicting manager in a 409 message:
    ``"name"`` for an applier, ``"name" using v1 at <time>`` for an updater."""
    name = json.dumps(str(entry.get("manager", "")))
    if entry.get("subresource"):
        name += f" with subresource {json.dumps(str(entry['subresource']))}"
    if entry.get("operation") == "Update":
        name += f" using {entry.get('apiVersion', '')}"
        if entry.get("time"):
            name += f" at {entry['time']}"
    return name


def _entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    raw = (obj.get("metadata") or {}).get("managedFields") or []
    return [dict(e) for e in raw if isinstance(e, dict)]


def _owned(entry: dict[str, Any]) -> set[Path]:
    return from_fields_v1(entry.get("fieldsV1") or {})


def _store_entries(obj: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    kept = [e for e in entries if e.get("fieldsV1")]
    meta = obj.setdefault("metadata", {})
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)


def _entry(manager: str, operation: str, api_version: str, paths: set[Path]) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }


def track_update(
    old: dict[str, Any] | None, new: dict[str, Any], manager: str, api_version: str
) -> dict[str, Any]:
    """Record in ``new`` that ``manager`` (operation Update) wrote what changed since ``old``.

    Fields that changed leave their other owners; removed fields leave every owner.
    Ownership that does not change leaves ``managedFields`` untouched (so a
    no-op write stays a no-op).
    """
    entries = _entries(old) if old is not None else []
    old_leaves = leaves(old) if old is not None else {}
    new_leaves = leaves(new)
    changed = {p for p, v in new_leaves.items() if old_leaves.get(p, _MISSING) != v}
    removed = set(old_leaves) - set(new_leaves)
    result: list[dict[str, Any]] = []
    mine: dict[str, Any] | None = None
    for entry in entries:
        owned = _owned(entry)
        if entry.get("manager") == manager and entry.get("operation") == "Update":
            mine = entry
            continue
        kept = owned - changed - removed
        if kept != owned:
            entry = {**entry, "fieldsV1": to_fields_v1(kept), "time": now()}
        result.append(entry)
    mine_owned = (_owned(mine) if mine is not None else set()) - removed
    if changed or mine is not None:
        if mine is not None and not changed and mine_owned == _owned(mine):
            result.append(mine)
        else:
            result.append(_entry(manager, "Update", api_version, mine_owned | changed))
    _store_entries(new, result)
    return new


def apply(
    current: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    force: bool,
    api_version: str,
) -> dict[str, Any]:
    """Server-side apply ``applied`` as ``manager``; returns the new object.

    Raises:
        ApiError: 409 Conflict listing every field owned by another manager
            with a different value (unless ``force``).
    """
    obj = (
        copy.deepcopy(current)
        if current is not None
        else {
            "apiVersion": applied.get("apiVersion"),
            "kind": applied.get("kind"),
            "metadata": {
                k: v
                for k, v in (applied.get("metadata") or {}).items()
                if k in ("name", "namespace")
            },
        }
    )
    entries = _entries(obj)
    applied_leaves = leaves(applied)
    conflicts: list[tuple[str, Path]] = []
    previous: set[Path] = set()
    mine: dict[str, Any] | None = None
    others: list[tuple[dict[str, Any], set[Path]]] = []
    for entry in entries:
        owned = _owned(entry)
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            previous, mine = owned, entry
            others.append((entry, owned))
            continue
        if entry.get("manager") == manager:
            # The same manager's earlier updates: the apply takes those fields over.
            owned -= set(applied_leaves)
        else:
            for path in sorted(owned & set(applied_leaves)):
                if _get(obj, path) != applied_leaves[path]:
                    if force:
                        owned.discard(path)
                    else:
                        conflicts.append((_print_manager(entry), path))
        others.append((entry, owned))
    if conflicts:
        # As upstream's getConflictMessage / NewConflictError.
        fields = [("." + ".".join(path), who) for who, path in conflicts]
        if len(fields) == 1:
            message = f"Apply failed with 1 conflict: conflict with {fields[0][1]}: {fields[0][0]}"
        else:
            by_manager: dict[str, list[str]] = {}
            for field, who in fields:
                by_manager.setdefault(who, []).append(field)
            lines: list[str] = []
            for who in sorted(by_manager):
                lines.append(f"conflicts with {who}:")
                lines.extend(f"- {field}" for field in by_manager[who])
            message = f"Apply failed with {len(fields)} conflicts: " + "\n".join(lines)
        raise ApiError(
            409,
            "Conflict",
            message,
            {
                "causes": [
                    {
                        "reason": "FieldManagerConflict",
                        "message": f"conflict with {who}",
                        "field": field,
                    }
                    for field, who in fields
                ],
            },
        )
    still_owned: set[Path] = set()
    for entry, owned in others:
        if entry is not mine:
            still_owned |= owned
    for path in previous - set(applied_leaves) - still_owned:
        _remove(obj, path)
    for path, value in applied_leaves.items():
        _set(obj, path, value)
    result: list[dict[str, Any]] = []
    for entry, owned in others:
        if entry is mine:
            owned = set(applied_leaves)
        if owned == _owned(entry):
            result.append(entry)
        else:
            result.append({**entry, "fieldsV1": to_fields_v1(owned), "time": now()})
    if mine is None:
        result.append(_entry(manager, "Apply", api_version, set(applied_leaves)))
    _store_entries(obj, result)
    return obj
