"""The bounded YAML loader for untrusted documents.

Configuration, manifests, ``--existing`` ConfigMaps and ``overrides.yaml``
are all read here, and only here. Per document:

* **aliases** may add at most :data:`MAX_ALIAS_NODES` nodes to what is
  written. The expanded size is counted on the event stream, with the size of
  every anchored node memoised, so nothing is expanded to count it: eight
  levels of ten aliases (``enabled: *a8``, 10**8 nodes in 500 bytes) are
  refused at the alias that crosses the bound, with its line and column. An
  alias to a node that contains it (a recursive structure) is refused too;
  at most :data:`MAX_YAML_ALIASES` aliases are allowed at all;
* **nesting** deeper than :data:`MAX_YAML_DEPTH` is refused, checked on the
  events *before* anything is composed (libyaml's composer recurses in C);
* **no key** is written twice in a mapping (``<<`` merges may be overridden);
* **integers follow YAML 1.2**, as Kubernetes reads manifests: ``1:20`` is
  the string ``"1:20"``, not the base-60 number 80, and ``010`` is 10.

libyaml's C parser is used when PyYAML was built with it (about ten times
faster, a fraction of the memory); otherwise the pure-Python one, with the
same checks. YAML still costs far more memory than its size, so callers cap
what they read: :data:`MAX_YAML_BYTES` for configuration, larger caps for
manifests (see :mod:`dyntoolset.manifests`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from dyntoolset.errors import Problem, describe

#: YAML documents larger than this are refused before parsing (configuration,
#: ``overrides.yaml``).
MAX_YAML_BYTES = 1024 * 1024
#: YAML aliases allowed in one document.
MAX_YAML_ALIASES = 100
#: Nodes that aliases may add to one document once expanded (bounds "billion
#: laughs": what a consumer walking the data would visit, not just what is written).
MAX_ALIAS_NODES = 10_000
#: Nesting allowed in one YAML document (deeper documents would exhaust the
#: interpreter's recursion limit, or libyaml's C stack, when composed).
MAX_YAML_DEPTH = 100

#: Whether libyaml's C parser is in use.
WITH_LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
# YAML 1.2 core schema integers; PyYAML's YAML 1.1 rules also read base 60
# (1:20), binary, underscores and a leading 0 as octal.
_YAML12_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
# PyYAML's YAML 1.1 float rule without the base-60 form (1:20.5).
_FLOAT_NO_BASE60 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class BoundedYAMLError(yaml.MarkedYAMLError):
    """A document broke one of the bounds; ``problem_mark`` says where."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _ScannedTooDeep(BoundedYAMLError):
    """libyaml's own nesting limit, hit while scanning ahead of our check."""


def _check_document(events: Any) -> None:
    """Consume one document's events from ``events`` (a parser), enforcing the bounds.

    Sizes are node counts of the expanded document: a scalar is 1, a
    collection 1 plus its children, an alias the size of its anchored node
    (memoised when that node ended), so counting costs one pass and constant
    memory per anchor however large the expansion.
    """
    sizes: dict[str, int] = {}  # anchor -> expanded size of its node
    open_anchors: set[str] = set()
    stack: list[list[Any]] = []  # [size so far, anchor] per open collection
    aliases = 0
    added = 0  # nodes the aliases add once expanded
    while not events.check_event(yaml.DocumentEndEvent):
        event = events.get_event()
        if isinstance(event, (yaml.CollectionEndEvent)):
            size, anchor = stack.pop()
            if anchor is not None:
                sizes[anchor] = size
                open_anchors.discard(anchor)
            if stack:
                stack[-1][0] += size
            continue
        if isinstance(event, yaml.DocumentStartEvent):
            continue
        if len(stack) >= MAX_YAML_DEPTH:
            raise BoundedYAMLError(f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_YAML_ALIASES:
                raise BoundedYAMLError(
                    f"more than {MAX_YAML_ALIASES} YAML aliases", event.start_mark
                )
            if event.anchor in open_anchors:
                raise BoundedYAMLError(
                    f"alias *{event.anchor} refers to a node that contains it (a recursive "
                    f"structure)",
                    event.start_mark,
                )
            # An undefined anchor counts 1 here; the composer reports it.
            size = sizes.get(event.anchor or "", 1)
            added += size - 1
            if added > MAX_ALIAS_NODES:
                raise BoundedYAMLError(
                    f"aliases expand this document by more than {MAX_ALIAS_NODES} nodes "
                    f"(a 'billion laughs' document); write the values out instead",
                    event.start_mark,
                )
            if stack:
                stack[-1][0] += size
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                sizes[event.anchor] = 1
            if stack:
                stack[-1][0] += 1
        else:  # a sequence or mapping starts
            stack.append([1, event.anchor])
            if event.anchor is not None:
                open_anchors.add(event.anchor)
    events.get_event()  # DocumentEndEvent


class _Bounded(yaml.constructor.SafeConstructor):
    """The safe loader for untrusted YAML; see the module docstring for its bounds.

    Documents are checked on a second parser running one document ahead, so
    nothing is composed (let alone constructed) before its document passed.
    Use :meth:`documents` or :meth:`single`; :meth:`dispose` when done.
    """

    _parser: Any = yaml.SafeLoader

    def __init__(self, text: str) -> None:
        super().__init__(text)  # type: ignore[call-arg]
        self._checker = self._parser(text)

    def dispose(self) -> None:
        self._checker.dispose()
        super().dispose()  # type: ignore[misc]

    def _check_next(self) -> bool:
        """Check the next document; False at the end of the stream."""
        checker = self._checker
        if checker.check_event(yaml.StreamStartEvent):
            checker.get_event()
        try:
            if checker.check_event(yaml.StreamEndEvent):
                return False
            _check_document(checker)
        except yaml.scanner.ScannerError as exc:
            # libyaml stops at 1000 levels while scanning ahead, before our own
            # check sees level 101: report it as ours, where libyaml stopped.
            if exc.problem != "exceeded maximum nesting depth":
                raise
            raise _ScannedTooDeep(
                f"nested deeper than {MAX_YAML_DEPTH} levels", exc.problem_mark
            ) from None
        return True

    def documents(self) -> Iterator[Any]:
        """Each document of the stream, constructed once it passed the checks."""
        while self._check_next():
            yield self.get_data()

    def single(self) -> Any:
        """The only document (``None`` for an empty stream); more than one is an error."""
        if not self._check_next():
            return None
        # Composes the first document only, then refuses a second one unread.
        return self.get_single_data()

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # unhashable: the base class reports it
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {describe(key)}",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: Any) -> int:
        """YAML 1.2 integers: decimal, ``0o`` octal, ``0x`` hex."""
        text = str(self.construct_scalar(node))
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)


def _yaml12_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    """The safe resolvers with YAML 1.2 integers and no base-60 floats."""
    table: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items():
        table[first] = [(tag, rule) for tag, rule in rules if tag not in (_INT, _FLOAT)]
    for first in "-+0123456789":
        table.setdefault(first, []).insert(0, (_INT, re.compile(f"^(?:{_YAML12_INT.pattern})$")))
    for first in "-+0123456789.":
        table.setdefault(first, []).append((_FLOAT, _FLOAT_NO_BASE60))
    return table


class _PythonBoundedLoader(_Bounded, yaml.SafeLoader):
    """The bounded loader on PyYAML's pure-Python parser."""

    _parser = yaml.SafeLoader


if WITH_LIBYAML:

    class _CBoundedLoader(_Bounded, yaml.CSafeLoader):
        """The bounded loader on libyaml's C parser."""

        _parser = yaml.CSafeLoader

    BoundedLoader: type[_Bounded] = _CBoundedLoader
else:  # pragma: no cover - PyYAML built without libyaml
    BoundedLoader = _PythonBoundedLoader

for _loader in {BoundedLoader, _PythonBoundedLoader}:
    _loader.yaml_implicit_resolvers = _yaml12_resolvers()  # type: ignore[attr-defined]
    _loader.add_constructor(_INT, _Bounded.construct_yaml_int)  # type: ignore[attr-defined]


def precise_error(exc: yaml.YAMLError, text: str) -> yaml.YAMLError:
    """The error to report for ``text``: libyaml's syntax errors reworded by PyYAML's parser.

    libyaml words syntax errors vaguely and places some of them late
    ("did not find expected node content" on the next line). For texts up to
    :data:`MAX_YAML_BYTES` (an error path; the pure-Python parser costs about
    ten times more) the same text is read again by the pure-Python parser,
    whose message and position are used when it fails too.
    """
    if (
        BoundedLoader is _PythonBoundedLoader
        or (isinstance(exc, BoundedYAMLError) and not isinstance(exc, _ScannedTooDeep))
        or isinstance(exc, yaml.constructor.ConstructorError)
        or len(text) > MAX_YAML_BYTES
    ):
        return exc
    loader = None
    try:
        loader = _PythonBoundedLoader(text)  # checks the characters already
        for _ in loader.documents():
            pass
    except yaml.YAMLError as again:
        return again
    finally:
        if loader is not None:
            loader.dispose()
    return exc


def yaml_error_location(exc: yaml.YAMLError, text: str) -> tuple[int, int] | None:
    """1-based (line, column) of a YAML error in ``text``, when known."""
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return mark.line + 1, mark.column + 1
    if isinstance(exc, yaml.reader.ReaderError):  # a character index, no mark
        position = exc.position
        return text.count("\n", 0, position) + 1, position - text.rfind("\n", 0, position)
    return None


def yaml_error_message(exc: yaml.YAMLError) -> str:
    """What is wrong, without PyYAML's multi-line location text."""
    if isinstance(exc, yaml.reader.ReaderError):
        return f"unacceptable character #x{exc.character:04x}: {exc.reason}"
    return getattr(exc, "problem", None) or str(exc)


def load_bounded_yaml(text: str) -> tuple[Any, list[Problem]]:
    """One document with every bound of the module and the :data:`MAX_YAML_BYTES` cap.

    Returns ``(data, [])`` or ``(None, [problem])``; problems carry line and column.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        return None, [Problem("$", f"file is larger than {MAX_YAML_BYTES} bytes")]
    loader = None
    try:
        loader = BoundedLoader(text)
        return loader.single(), []
    except yaml.YAMLError as error:
        exc = precise_error(error, text)
        where = yaml_error_location(exc, text)
        at = f" at line {where[0]}, column {where[1]}" if where else ""
        return None, [Problem("$", f"invalid YAML{at}: {yaml_error_message(exc)}")]
    finally:
        if loader is not None:
            loader.dispose()
