"""The strict converter: plain data (from YAML) into attrs classes, every problem at once.

One private cattrs converter, shared by the configuration and by detectors'
own ``Settings`` classes, with strict scalars (``enabled: "false"`` is a type
error, never ``True``; ``priority: "1"`` is not an int), unknown keys
rejected, validated value types (durations, DNS names, host patterns,
networks, health paths) and errors flattened into
:class:`~dyntoolset.errors.Problem` values, each with a ``$.path``. YAML is
read with ``safe_load`` under size and alias caps.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal, NewType

import attrs
import yaml
from cattrs import Converter
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_mapping_structure_fn

from dyntoolset.errors import Problem
from dyntoolset.matching import AnnotationRequirements, NamespaceFilter

#: YAML documents larger than this are refused before parsing.
MAX_YAML_BYTES = 1024 * 1024
#: YAML aliases allowed in one document (bounds "billion laughs" expansion).
MAX_YAML_ALIASES = 100
#: Nesting allowed in one YAML document (deeper documents would exhaust the
#: interpreter's recursion limit in the parser).
MAX_YAML_DEPTH = 100
#: The longest duration accepted anywhere (7 days): long enough for any
#: interval, short enough for socket and thread timeouts.
MAX_DURATION_SECONDS = 7 * 24 * 3600.0

Seconds = NewType("Seconds", float)
"""A positive duration: a number of seconds or a string like ``5s``, ``500ms``, ``1m30s``."""
NonNegativeInt = NewType("NonNegativeInt", int)
PositiveInt = NewType("PositiveInt", int)
Priority = NewType("Priority", int)
HealthPath = NewType("HealthPath", str)
DnsName = NewType("DnsName", str)
DnsLabel = NewType("DnsLabel", str)
"""A DNS label such as a namespace name: no dots, at most 63 characters."""
HostPattern = NewType("HostPattern", str)
"""A host name or shell-style pattern: ``prometheus.infra``, ``*.example.com``."""
Network = NewType("Network", str)
"""An IP network in CIDR notation (``127.0.0.0/8``) or a single address."""
#: A mapping structured later by a detector's own ``Settings`` class.
RawMapping = NewType("RawMapping", dict[str, Any])

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HOST_PATTERN = re.compile(r"^[a-z0-9*](?:[a-z0-9*.-]{0,251}[a-z0-9*])?$")
_FORBIDDEN_IN_PATH = ("@", "#", "\\", "\r", "\n", "..", "?")


def health_path_problem(path: str) -> str | None:
    """Why ``path`` is not a safe health-check path, or ``None`` if it is."""
    if not path.startswith("/"):
        return f"health path {path!r} must start with '/'"
    if len(path) > 1024:
        return "health path is longer than 1024 characters"
    bad = [c for c in _FORBIDDEN_IN_PATH if c in path]
    if bad or not path.isprintable():
        return f"health path {path!r} must not contain {', '.join(map(repr, bad)) or 'control characters'}"
    return None


def describe(value: Any) -> str:
    """``repr(value)``, shortened for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _strict(kind: type, label: str) -> Any:
    def hook(value: Any, _: Any) -> Any:
        # bool is an int subclass: reject it where an int or float is wanted.
        if type(value) is bool and kind is not bool:
            raise TypeError(f"expected {label}, got {describe(value)}")
        if kind is float and type(value) is int:
            return float(value)
        if not isinstance(value, kind):
            raise TypeError(f"expected {label}, got {describe(value)}")
        return value

    return hook


def parse_duration(value: Any) -> float:
    """Seconds from a number or a Go-style duration string (``5s``, ``1m30s``, ``250ms``).

    The result is finite, positive and at most :data:`MAX_DURATION_SECONDS`.
    """
    if type(value) in (int, float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond the float range
            seconds = math.inf
    elif isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(
                f"expected a duration such as 5s, 500ms, 1m30s or a number of seconds, "
                f"got {describe(value)}"
            )
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise TypeError(f"expected a duration, got {describe(value)}")
    if not seconds > 0:  # NaN included
        raise ValueError(f"must be a positive duration, got {describe(value)}")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(
            f"must be at most 7 days ({MAX_DURATION_SECONDS:.0f} seconds), got {describe(value)}"
        )
    return seconds


def _bounded_int(low: int, high: int) -> Any:
    strict_int = _strict(int, "int")

    def hook(value: Any, _: Any) -> int:
        number: int = strict_int(value, int)
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}, got {number}")
        return number

    return hook


def _checked_str(problem_of: Callable[[str], str | None]) -> Any:
    """A structure hook: a string (strictly) that ``problem_of`` finds nothing wrong with."""
    strict_str = _strict(str, "str")

    def hook(value: Any, _: Any) -> str:
        text: str = strict_str(value, str)
        problem = problem_of(text)
        if problem:
            raise ValueError(problem)
        return text

    return hook


def _dns_name_problem(name: str) -> str | None:
    if len(name) > 253 or not _DNS_NAME.match(name):
        return f"{name!r} is not a valid DNS name (lowercase letters, digits, '-', '.')"
    return None


def _dns_label_problem(name: str) -> str | None:
    if not _DNS_LABEL.match(name):
        return (
            f"{name!r} is not a valid namespace name: lowercase letters, digits and '-', "
            f"at most 63 characters"
        )
    return None


def _host_pattern_problem(pattern: str) -> str | None:
    if not _HOST_PATTERN.match(pattern):
        return (
            f"{pattern!r} is not a host name pattern: use lowercase letters, digits, "
            f"'-', '.' and '*' wildcards, like '*.example.com'"
        )
    return None


def _network_problem(text: str) -> str | None:
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return f"{text!r} is not an IP network such as 127.0.0.0/8 or ::1"
    return None


def _checked_items(value: Any, build: Any) -> list[str]:
    """``value`` as a list of strings each accepted by ``build([item])``.

    Every bad item is reported at its own index (``$.…namespaces[2]: …``).
    """
    if not isinstance(value, list):
        raise TypeError(f"expected a list of strings, got {describe(value)}")
    errors: list[Exception] = []
    for index, item in enumerate(value):
        error: Exception | None = None
        if not isinstance(item, str):
            error = TypeError(f"expected a string, got {describe(item)}")
        else:
            try:
                build([item])
            except ValueError as exc:
                error = exc
        if error is not None:
            error.__notes__ = [IterableValidationNote(f"Structuring item {index}", index, str)]
            errors.append(error)
    if errors:
        raise IterableValidationError("invalid list items", errors, list)
    return value


def _literal(value: Any, literal: Any) -> Any:
    allowed = literal.__args__
    if value not in allowed or type(value) is bool:
        raise ValueError(f"expected one of {', '.join(map(repr, allowed))}, got {describe(value)}")
    return value


def _make_converter() -> Converter:
    converter = Converter(forbid_extra_keys=True)
    converter.register_structure_hook(bool, _strict(bool, "bool (true or false)"))
    converter.register_structure_hook(int, _strict(int, "int"))
    converter.register_structure_hook(float, _strict(float, "number"))
    converter.register_structure_hook(str, _strict(str, "str"))
    converter.register_structure_hook(Seconds, lambda v, _: parse_duration(v))
    converter.register_structure_hook(NonNegativeInt, _bounded_int(0, 1000))
    converter.register_structure_hook(PositiveInt, _bounded_int(1, 1_000_000_000))
    converter.register_structure_hook(Priority, _bounded_int(0, 1_000_000))
    converter.register_structure_hook(HealthPath, _checked_str(health_path_problem))
    converter.register_structure_hook(DnsName, _checked_str(_dns_name_problem))
    converter.register_structure_hook(DnsLabel, _checked_str(_dns_label_problem))
    converter.register_structure_hook(HostPattern, _checked_str(_host_pattern_problem))
    converter.register_structure_hook(Network, _checked_str(_network_problem))
    converter.register_structure_hook(
        NamespaceFilter, lambda v, _: NamespaceFilter(_checked_items(v, NamespaceFilter))
    )
    converter.register_structure_hook(
        AnnotationRequirements,
        lambda v, _: AnnotationRequirements(_checked_items(v, AnnotationRequirements)),
    )

    def mapping_of_anything(value: Any, _: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise TypeError(f"expected a mapping, got {describe(value)}")
        return value

    converter.register_structure_hook(RawMapping, mapping_of_anything)

    # Check "is it a mapping" first, so a scalar where a block belongs gets a
    # clear message rather than an AttributeError from deep inside cattrs.
    def mapping_first(make: Any) -> Any:
        def factory(cl: Any) -> Any:
            inner = make(cl)

            def hook(value: Any, target: Any) -> Any:
                if not isinstance(value, dict):
                    raise TypeError(f"expected a mapping, got {describe(value)}")
                return inner(value, target)

            return hook

        return factory

    def attrs_class(cl: Any) -> Any:
        inner = make_dict_structure_fn(cl, converter, _cattrs_forbid_extra_keys=True)

        def hook(value: Any, target: Any) -> Any:
            try:
                return inner(value, target)
            except ClassValidationError as exc:
                attributed, unattributed = exc.group_exceptions()
                if attributed or not unattributed:
                    raise
                # Raised by the class itself (an attrs validator), which cattrs
                # cannot attribute to a field: find the field it belongs to.
                raise _attribute_validator_errors(converter, cl, value) or exc from None

        return hook

    converter.register_structure_hook_factory(attrs.has, mapping_first(attrs_class))

    # A YAML string where a list belongs would otherwise become a list of characters.
    def list_first(cl: Any) -> Any:
        item = cl.__args__[0]

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, list):
                raise TypeError(f"expected a list, got {describe(value)}")
            return cl.__origin__(converter.structure(value, list[item]))  # type: ignore[valid-type]

        return hook

    converter.register_structure_hook_factory(
        lambda t: getattr(t, "__origin__", None) is tuple and t.__args__[-1] is Ellipsis, list_first
    )
    converter.register_structure_hook_factory(
        lambda t: getattr(t, "__origin__", None) is dict,
        mapping_first(lambda cl: make_mapping_structure_fn(cl, converter)),
    )
    converter.register_structure_hook_func(
        lambda t: getattr(t, "__origin__", None) is Literal, _literal
    )
    return converter


def _attribute_validator_errors(
    converter: Converter, cl: Any, value: dict[str, Any]
) -> ClassValidationError | None:
    """Re-run each field's validator alone, so its error carries the field's path."""
    errors: list[Exception] = []
    for field in attrs.fields(attrs.resolve_types(cl)):
        if field.validator is None or field.name not in value:
            continue
        try:
            field.validator(None, field, converter.structure(value[field.name], field.type))
        except (ValueError, TypeError) as exc:
            exc.__notes__ = [
                AttributeValidationNote(
                    f"Structuring {cl.__qualname__}.{field.name}", field.name, field.type
                )
            ]
            errors.append(exc)
    if not errors:
        return None
    return ClassValidationError(f"While structuring {cl.__qualname__}", errors, cl)


_converter = _make_converter()


def path_segment(name: Any) -> str:
    if isinstance(name, int):
        return f"[{name}]"
    text = str(name)
    return f".{text}" if re.fullmatch(r"[A-Za-z0-9_-]+", text) else f"[{text!r}]"


def _collect(exc: BaseException, path: str, out: list[Problem], fields: Sequence[str] = ()) -> None:
    """Flatten a cattrs exception tree into ``$.path: message`` problems."""
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        known = [a.name for a in attrs.fields(exc.cl)] if attrs.has(exc.cl) else []
        for sub, note in with_notes:
            _collect(sub, path + path_segment(note.name), out)
        for sub in without:
            _collect(sub, path, out, known)
    elif isinstance(exc, IterableValidationError):
        indexed, rest = exc.group_exceptions()
        for sub, index_note in indexed:
            _collect(sub, path + path_segment(index_note.index), out)
        for sub in rest:
            _collect(sub, path, out)
    elif isinstance(exc, ForbiddenExtraKeysError):
        allowed = sorted(a.name for a in attrs.fields(exc.cl)) if attrs.has(exc.cl) else fields
        for key in sorted(exc.extra_fields):
            out.append(
                Problem(
                    path + path_segment(key), f"unknown key; expected one of: {', '.join(allowed)}"
                )
            )
    elif isinstance(exc, KeyError):
        out.append(Problem(path, f"required key {exc.args[0]!r} is missing"))
    elif isinstance(exc, (TypeError, ValueError)):
        out.append(Problem(path, str(exc)))
    else:  # pragma: no cover - cattrs raises only the kinds above
        out.append(Problem(path, f"{type(exc).__name__}: {exc}"))


def structure(data: Any, cls: type, path: str = "$") -> tuple[Any, list[Problem]]:
    """Structure ``data`` into ``cls`` strictly; returns ``(value or None, problems)``."""
    if attrs.has(cls) and not isinstance(data, dict):
        return None, [Problem(path, f"expected a mapping, got {describe(data)}")]
    try:
        return _converter.structure(data, cls), []
    except (ClassValidationError, IterableValidationError, TypeError, ValueError) as exc:
        problems: list[Problem] = []
        _collect(exc, path, problems)
        return None, problems


def unstructure(value: Any) -> Any:
    """Plain data (for ``config show``) from any configuration object."""
    return _converter.unstructure(value)


# -- YAML ---------------------------------------------------------------------


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader for untrusted YAML: bounded aliases and depth, no duplicate keys.

    Per document: more than :data:`MAX_YAML_ALIASES` aliases or nesting
    deeper than :data:`MAX_YAML_DEPTH` is an error, and so is a mapping that
    repeats a key (plain PyYAML silently keeps the last value). Keys brought
    in by a ``<<`` merge may still be overridden, as YAML intends.
    """

    aliases_seen = 0
    depth = 0

    def compose_document(self) -> Any:
        self.aliases_seen = 0
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} YAML aliases")
        self.depth += 1
        try:
            if self.depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_YAML_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

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
    """``yaml.safe_load`` with the size and alias caps; problems carry line and column."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        return None, [Problem("$", f"file is larger than {MAX_YAML_BYTES} bytes")]
    loader = None
    try:
        loader = BoundedLoader(text)  # checks the characters already
        return loader.get_single_data(), []
    except yaml.YAMLError as exc:
        where = yaml_error_location(exc, text)
        at = f" at line {where[0]}, column {where[1]}" if where else ""
        return None, [Problem("$", f"invalid YAML{at}: {yaml_error_message(exc)}")]
    finally:
        if loader is not None:
            loader.dispose()
