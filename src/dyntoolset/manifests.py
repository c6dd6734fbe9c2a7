"""Reading Kubernetes manifests from files, directories and standard input.

Accepts multi-document YAML, JSON, and ``List`` / ``ServiceList`` objects as
printed by ``kubectl get svc -A -o json``. Malformed documents are reported
with the file and position; they never stop the other files from loading.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import yaml

from dyntoolset.boundedyaml import (
    MAX_YAML_DEPTH,
    BoundedLoader,
    precise_error,
    yaml_error_location,
    yaml_error_message,
)
from dyntoolset.errors import ManifestError

#: Manifests larger than this are refused (a cluster dump of 50,000 Services
#: is about 100 MB of YAML, 150 MB of JSON).
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
#: YAML is read only up to this size: composing it costs about 60 times its
#: size in memory even with libyaml (measured with tracemalloc on a List of
#: Services: 55 times with libyaml, 80 without), so 16 MiB already needs about 1 GB. JSON, read by the json module at a few times its size,
#: keeps :data:`MAX_MANIFEST_BYTES`.
MAX_YAML_MANIFEST_BYTES = 16 * 1024 * 1024
#: What YAML costs in memory per byte of text, for the size error's estimate.
_YAML_MEMORY_FACTOR = 60
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@attrs.frozen
class ManifestObject:
    """One Kubernetes object read from a manifest, with where it came from."""

    source: str
    position: str  # "document N" or "line L" — where in ``source``
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")


@attrs.define
class ManifestReport:
    """Objects read and problems met, in input order."""

    objects: list[ManifestObject] = attrs.Factory(list)
    errors: list[ManifestError] = attrs.Factory(list)


def _read(source: str, stream: BinaryIO) -> str | ManifestError:
    """At most :data:`MAX_MANIFEST_BYTES` of ``stream`` as text, or why not.

    The cap holds on what is read, not on ``stat()``, which says 0 bytes for
    pipes and devices.
    """
    data = stream.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        return ManifestError(source, f"larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ManifestError(source, f"not UTF-8 text: {exc.reason}")


def _read_stdin() -> str | ManifestError:
    """Standard input as text, or why it cannot be read (closed, not readable)."""
    if sys.stdin is None:  # started with stdin closed (<&-)
        return ManifestError("<stdin>", "standard input is closed; pipe the manifests in")
    try:
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:  # replaced by a text stream (tests, embedders)
            return sys.stdin.read(MAX_MANIFEST_BYTES + 1)
        return _read("<stdin>", stdin)
    except (OSError, ValueError) as exc:  # a closed descriptor, a closed file object
        reason = getattr(exc, "strerror", None) or str(exc)
        return ManifestError("<stdin>", f"cannot read standard input: {reason}")


def _expand(paths: Iterable[str]) -> Iterator[tuple[str, str | ManifestError]]:
    """Yield (source, text or error) per file; directories are walked in sorted order."""
    for raw in paths:
        if raw == "-":
            yield "<stdin>", _read_stdin()
            continue
        if not raw.strip():
            yield repr(raw), ManifestError(repr(raw), "empty path")
            continue
        path = Path(raw)
        if not path.exists():
            yield raw, ManifestError(raw, "no such file or directory")
            continue
        if path.is_dir():
            # Hidden entries are skipped: a mounted ConfigMap holds every file
            # a second time under '..<timestamp>/' (reached through '..data').
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix in MANIFEST_SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            files = [path]
        for file in files:
            source = str(file)
            try:
                with file.open("rb") as stream:
                    yield source, _read(source, stream)
            except OSError as exc:
                yield source, ManifestError(source, exc.strerror or str(exc))


def _flatten(
    item: Any, source: str, position: str, report: ManifestReport, expanded: set[int]
) -> None:
    if item is None:
        return
    if not isinstance(item, dict):
        report.errors.append(
            ManifestError(
                source, f"expected a Kubernetes object, got {type(item).__name__}", position
            )
        )
        return
    kind = item.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in item:
        items = item["items"]
        if items is None:
            return
        if not isinstance(items, list):
            report.errors.append(
                ManifestError(
                    source, f"{kind} items must be a list, got {type(items).__name__}", position
                )
            )
            return
        # YAML aliases can repeat a List inside itself at every level: expanding
        # each repetition would turn a few hundred bytes into 10**8 objects.
        if id(item) in expanded:
            report.errors.append(
                ManifestError(
                    source,
                    "this List is repeated (through a YAML alias); it is read only once",
                    position,
                )
            )
            return
        expanded.add(id(item))
        for index, child in enumerate(items):
            _flatten(child, source, f"{position} items[{index}]", report, expanded)
        return
    report.objects.append(ManifestObject(source, position, item))


_NOT_JSON = object()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise ValueError("duplicate key")  # the YAML reader says which, and where
    return mapping


def _fast_json(text: str) -> Any:
    """``text`` parsed as one JSON document, or ``_NOT_JSON``.

    ``kubectl get -o json`` output parses about 50 times faster with the json
    module than with PyYAML. Anything the fast path does not accept (YAML,
    malformed or duplicate-keyed JSON, nesting near the YAML depth cap) goes
    through the YAML reader, which reports it with its position.
    """
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped.startswith(("{", "[")):
        return _NOT_JSON
    try:
        document = json.loads(stripped, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError):
        return _NOT_JSON
    return _NOT_JSON if _deeper_than(document, MAX_YAML_DEPTH - 1) else document


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels (iteratively: no recursion)."""
    stack = [(document, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def parse_manifest_text(text: str, source: str, report: ManifestReport) -> None:
    """Parse one file's text (YAML, of which JSON is a subset) into ``report``.

    JSON up to :data:`MAX_MANIFEST_BYTES` takes the json module's fast path;
    everything else is read, up to :data:`MAX_YAML_MANIFEST_BYTES`, by the same
    bounded loader as the configuration (:mod:`dyntoolset.boundedyaml`:
    expansion, alias and depth bounds, no key written twice, YAML 1.2 integers).
    """
    if len(text) > MAX_MANIFEST_BYTES:
        report.errors.append(ManifestError(source, f"larger than {MAX_MANIFEST_BYTES} bytes"))
        return
    document = _fast_json(text)
    if document is not _NOT_JSON:
        _flatten(document, source, "document 1", report, set())
        return
    if len(text) > MAX_YAML_MANIFEST_BYTES:
        gigabytes = len(text) * _YAML_MEMORY_FACTOR / 2**30
        report.errors.append(
            ManifestError(
                source,
                f"{len(text)} characters of YAML (or of JSON the JSON reader refused) is more "
                f"than the {MAX_YAML_MANIFEST_BYTES} read as YAML: reading it would take about "
                f"{gigabytes:.1f} GB of memory; use 'kubectl get ... -o json', which is read up "
                f"to {MAX_MANIFEST_BYTES} bytes",
            )
        )
        return
    loader = None
    index = 0
    try:
        loader = BoundedLoader(text)  # checks the characters already
        for index, document in enumerate(loader.documents(), start=1):
            _flatten(document, source, f"document {index}", report, set())
    except yaml.YAMLError as error:
        exc = precise_error(error, text)
        where = yaml_error_location(exc, text)
        position = f"line {where[0]} column {where[1]}" if where else f"document {index + 1}"
        message = f"invalid YAML: {yaml_error_message(exc)}"
        report.errors.append(ManifestError(source, message, position))
        # the parser cannot resynchronise after a syntax error
    finally:
        if loader is not None:
            loader.dispose()


def read_manifests(paths: Iterable[str]) -> ManifestReport:
    """Read every object from ``paths`` (files, directories or ``-`` for stdin)."""
    report = ManifestReport()
    for source, text in _expand(paths):
        if isinstance(text, ManifestError):
            report.errors.append(text)
        else:
            parse_manifest_text(text, source, report)
    return report
