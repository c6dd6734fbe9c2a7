"""The strict converter: plain data (from YAML) into attrs classes, every problem at once.

One private cattrs converter, shared by the configuration and by detectors'
own ``Settings`` classes, with strict scalars (``enabled: "false"`` is a type
error, never ``True``; ``priority: "1"`` is not an int), unknown keys
rejected, the validated value types of :mod:`dyntoolset.values`, and errors
flattened into :class:`~dyntoolset.errors.Problem` values, each with a
``$.path``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Literal

import attrs
from cattrs import Converter
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_mapping_structure_fn

from dyntoolset.errors import Problem, describe
from dyntoolset.matching import AnnotationRequirements, NamespaceFilter
from dyntoolset.values import (
    INT_BOUNDS,
    ClusterDomain,
    DnsLabel,
    DnsName,
    HealthPath,
    HostPattern,
    Network,
    RawMapping,
    Seconds,
    bounded_int_hook,
    checked_str_hook,
    cluster_domain_problem,
    dns_label_problem,
    dns_name_problem,
    health_path_problem,
    host_pattern_problem,
    network_problem,
    parse_duration,
    strict_hook,
)


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
    converter.register_structure_hook(bool, strict_hook(bool, "bool (true or false)"))
    converter.register_structure_hook(int, strict_hook(int, "int"))
    converter.register_structure_hook(float, strict_hook(float, "number"))
    converter.register_structure_hook(str, strict_hook(str, "str"))
    converter.register_structure_hook(Seconds, lambda v, _: parse_duration(v))
    for bounded, (low, high) in INT_BOUNDS.items():
        converter.register_structure_hook(bounded, bounded_int_hook(low, high))
    converter.register_structure_hook(HealthPath, checked_str_hook(health_path_problem))
    converter.register_structure_hook(DnsName, checked_str_hook(dns_name_problem))
    converter.register_structure_hook(ClusterDomain, checked_str_hook(cluster_domain_problem))
    converter.register_structure_hook(DnsLabel, checked_str_hook(dns_label_problem))
    converter.register_structure_hook(HostPattern, checked_str_hook(host_pattern_problem))
    converter.register_structure_hook(Network, checked_str_hook(network_problem))
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
                if not attributed and not unattributed:
                    raise
                if attributed:
                    # Fields of the wrong type stopped cattrs before the class
                    # was built, so no validator ran: run the validators of the
                    # other fields too, so every bad field is reported at once.
                    failed = {note.name for _, note in attributed}
                    more = _attribute_validator_errors(converter, cl, value, skip=failed)
                    if more is None:
                        raise
                    raise ClassValidationError(
                        exc.message, [*exc.exceptions, *more.exceptions], cl
                    ) from None
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
    converter: Converter, cl: Any, value: dict[str, Any], skip: AbstractSet[str] = frozenset()
) -> ClassValidationError | None:
    """Re-run each field's validator alone, so its error carries the field's path.

    Fields named in ``skip`` (already reported) and fields whose value does
    not even structure are left out.
    """
    errors: list[Exception] = []
    for field in attrs.fields(attrs.resolve_types(cl)):
        if field.validator is None or field.name not in value or field.name in skip:
            continue
        try:
            structured = converter.structure(value[field.name], field.type)
        except (ClassValidationError, IterableValidationError, TypeError, ValueError):
            continue
        try:
            field.validator(None, field, structured)
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
