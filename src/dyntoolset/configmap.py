"""The output ConfigMap as a pure document: build, merge with what exists, detect drift.

dyntoolset owns only what it generates: one data key per enabled renderer,
its labels and its annotations. Everything else in the ConfigMap, above all
the operator's ``overrides.yaml``, survives byte for byte.

Ownership and drift are tracked with an annotation holding the hash of each
data key as dyntoolset last wrote it. A generated key whose content no longer
matches that hash (someone edited it) or that vanished (someone deleted it)
is *drift*: it is restored and reported. A key that simply needs new content
because discovery changed is an ordinary update.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import attrs
import yaml

from dyntoolset.boundedyaml import load_bounded_yaml
from dyntoolset.config import OutputSettings
from dyntoolset.convert import path_segment
from dyntoolset.errors import DocumentTooLargeError, InvalidConfigMapError, describe
from dyntoolset.model import OVERRIDES_KEY as OVERRIDES_KEY  # re-exported: configmap.OVERRIDES_KEY

log = logging.getLogger(__name__)

#: The Kubernetes limit on a ConfigMap's data.
MAX_DATA_BYTES = 1024 * 1024

LABELS = {
    "app.kubernetes.io/name": "dyntoolset",
    "app.kubernetes.io/component": "dynamic-toolset",
    "app.kubernetes.io/managed-by": "dyntoolset",
}
GENERATED_AT = "kubernaut.io/generated-at"
CONTENT_HASH = "dyntoolset.io/content-hash"
KEY_HASHES = "dyntoolset.io/generated-keys"


def content_hash(text: str) -> str:
    """Short, stable hash of one generated document."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _document_hash(data: Mapping[str, str]) -> str:
    canonical = json.dumps(dict(sorted(data.items())), separators=(",", ":"), ensure_ascii=False)
    return content_hash(canonical)


def data_size(data: Mapping[str, str], binary_data: Mapping[str, str] | None = None) -> int:
    """Bytes of ``data`` and ``binaryData`` as Kubernetes counts them against 1 MiB.

    Keys and values; ``binaryData`` values count decoded (they are base64 in
    the object).
    """
    size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
    for key, encoded in (binary_data or {}).items():
        try:
            value_size = len(base64.b64decode(encoded, validate=True))
        except ValueError:  # not base64: the API server refuses it anyway
            value_size = len(encoded.encode())
        size += len(key.encode()) + value_size
    return size


@attrs.frozen
class MergeResult:
    """What to write, and what changed."""

    #: The full ConfigMap object to create or replace.
    configmap: dict[str, Any]
    #: False when the existing ConfigMap already equals the result: write nothing.
    changed: bool
    #: True when there was no ConfigMap.
    created: bool
    #: Generated keys someone else edited or deleted (restored in ``configmap``).
    drifted: tuple[str, ...] = ()
    #: Generated keys of formats no longer enabled, removed from ``data``.
    removed: tuple[str, ...] = ()
    #: What the caller should report: why the operator's ``overrides.yaml`` (or
    #: part of it) was not applied, or that an immutable ConfigMap cannot take
    #: the change.
    problems: tuple[str, ...] = ()


def _string_map_problems(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [f"{path}: expected a mapping of strings to strings, got {describe(value)}"]
    problems = []
    for key, item in value.items():
        if not isinstance(key, str):
            problems.append(f"{path}: keys must be strings, got {describe(key)}")
        elif not isinstance(item, str):
            problems.append(f"{path}{path_segment(key)}: expected a string, got {describe(item)}")
    return problems


def configmap_problems(configmap: Any) -> list[str]:
    """Why ``configmap`` cannot be merged into (``$.path: message`` texts), or ``[]``.

    ``data``, ``binaryData``, labels and annotations must be mappings of
    strings to strings; ``null`` counts as empty. The API server guarantees
    this; a ConfigMap written or edited by hand may not.
    """
    if not isinstance(configmap, Mapping):
        return [f"$: expected a mapping, got {describe(configmap)}"]
    meta = configmap.get("metadata")
    problems = []
    if meta is not None and not isinstance(meta, dict):
        problems.append(f"$.metadata: expected a mapping, got {describe(meta)}")
    elif meta is not None:
        problems += _string_map_problems(meta.get("labels"), "$.metadata.labels")
        problems += _string_map_problems(meta.get("annotations"), "$.metadata.annotations")
    problems += _string_map_problems(configmap.get("data"), "$.data")
    problems += _string_map_problems(configmap.get("binaryData"), "$.binaryData")
    return problems


def _check_existing(existing: Any) -> None:
    if existing is not None:
        problems = configmap_problems(existing)
        if problems:
            raise InvalidConfigMapError(problems)


def _recorded_hashes(annotations: Mapping[str, str]) -> dict[str, str]:
    raw = annotations.get(KEY_HASHES)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        log.warning("annotation %s is not JSON; treating generated keys as new", KEY_HASHES)
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        log.warning("annotation %s is malformed; treating generated keys as new", KEY_HASHES)
        return {}
    return value


def merge_configmap(
    generated: Mapping[str, str],
    output: OutputSettings,
    existing: Mapping[str, Any] | None,
    now: str,
) -> MergeResult:
    """Merge ``generated`` data keys into ``existing`` (or a new ConfigMap).

    ``now`` (RFC 3339) becomes ``kubernaut.io/generated-at`` only when the
    generated content changes, so an unchanged cluster yields an identical
    object and no write. Raises :class:`DocumentTooLargeError` when the
    result would exceed 1 MiB of data, and :class:`InvalidConfigMapError`
    when ``existing`` has the wrong shape (see :func:`configmap_problems`);
    nothing partial is ever returned.
    """
    _check_existing(existing)
    if OVERRIDES_KEY in generated:
        raise ValueError(f"{OVERRIDES_KEY} belongs to the operator and is never generated")
    hashes = {key: content_hash(text) for key, text in sorted(generated.items())}
    document_hash = _document_hash(generated)
    if existing is None:
        old_meta: Mapping[str, Any] = {}
        old_data: dict[str, str] = {}
    else:
        old_meta = existing.get("metadata") or {}
        old_data = dict(existing.get("data") or {})
    old_annotations: dict[str, str] = dict(old_meta.get("annotations") or {})
    recorded = _recorded_hashes(old_annotations)

    drifted = []
    for key in hashes:
        if key in recorded and (
            key not in old_data or content_hash(old_data[key]) != recorded[key]
        ):
            drifted.append(key)
    removed = []
    data = dict(old_data)
    for key, old_hash in recorded.items():
        if key in hashes or key == OVERRIDES_KEY or key not in data:
            continue
        if content_hash(data[key]) == old_hash:
            del data[key]
            removed.append(key)
        else:
            log.warning("keeping %s: no longer generated, but edited by someone else", key)
    data.update(generated)

    size = data_size(data, (existing or {}).get("binaryData"))
    if size > MAX_DATA_BYTES:
        raise DocumentTooLargeError(size, MAX_DATA_BYTES)

    annotations = dict(old_annotations)
    unchanged = (
        old_annotations.get(CONTENT_HASH) == document_hash and GENERATED_AT in old_annotations
    )
    annotations.update(
        {
            CONTENT_HASH: document_hash,
            KEY_HASHES: json.dumps(hashes, separators=(",", ":")),
            GENERATED_AT: old_annotations[GENERATED_AT] if unchanged else now,
        }
    )
    labels = {**dict(old_meta.get("labels") or {}), **LABELS}

    metadata = copy.deepcopy(dict(old_meta)) if existing is not None else {}
    metadata.update(
        name=output.name, namespace=output.namespace, labels=labels, annotations=annotations
    )
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
    if existing is not None:
        for field in ("binaryData", "immutable"):
            if field in existing:
                configmap[field] = copy.deepcopy(existing[field])
    changed = existing is None or (
        data != old_data
        or labels != dict(old_meta.get("labels") or {})
        or annotations != old_annotations
    )
    problems: tuple[str, ...] = ()
    if existing is not None and existing.get("immutable") is True and data != old_data:
        # Kept as it is (the API server refuses to unset it too), but said out loud.
        problems = (
            "the existing ConfigMap is immutable (immutable: true) and its data changes: "
            "the API server will refuse the update; delete the ConfigMap and create it again",
        )
    return MergeResult(
        configmap=configmap,
        changed=changed,
        created=existing is None,
        drifted=tuple(drifted),
        removed=tuple(removed),
        problems=problems,
    )


def read_overrides(existing: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
    """The operator's ``overrides.yaml`` of ``existing``, parsed.

    Returns ``(mapping, "")``, ``(None, "")`` when there is none, or
    ``(None, problem)`` when it is not a YAML mapping (read with the same
    size and alias caps as the configuration). Raises
    :class:`InvalidConfigMapError` when ``existing`` has the wrong shape.
    """
    _check_existing(existing)
    text = ((existing or {}).get("data") or {}).get(OVERRIDES_KEY)
    if not text or not text.strip():
        return None, ""
    data, problems = load_bounded_yaml(text)
    if problems:
        return None, f"{OVERRIDES_KEY}: {problems[0]}"
    if not isinstance(data, dict):
        return None, f"{OVERRIDES_KEY}: $: expected a mapping, got {type(data).__name__}"
    return data, ""


def for_display(configmap: Mapping[str, Any]) -> dict[str, Any]:
    """``configmap`` without server-set metadata, ready for ``kubectl apply``."""
    shown = copy.deepcopy(dict(configmap))
    meta = shown.get("metadata") or {}
    for field in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
        meta.pop(field, None)
    return shown


class _BlockDumper(yaml.SafeDumper):
    """SafeDumper that prints multi-line strings as literal blocks (``|``)."""


# Characters YAML 1.1 reads as line breaks besides LF. PyYAML writes them raw
# (allow_unicode) in block and single-quoted scalars, where a reader turns them
# into newlines or spaces; only the double-quoted style escapes them (\N, \L, \P).
_OTHER_LINE_BREAKS = frozenset("\x85\u2028\u2029")


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if not _OTHER_LINE_BREAKS.isdisjoint(value):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def to_yaml(configmap: Mapping[str, Any]) -> str:
    """``configmap`` as YAML for people and ``kubectl apply``; documents stay readable.

    PyYAML falls back to a quoted style on its own whenever a literal block
    could not represent the string exactly, and strings holding the other YAML
    line breaks (NEL, LS, PS) are double-quoted, so every string round-trips
    byte for byte.
    """
    return yaml.dump(dict(configmap), Dumper=_BlockDumper, sort_keys=False, allow_unicode=True)
