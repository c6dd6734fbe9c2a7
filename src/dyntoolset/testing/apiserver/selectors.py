"""Label and field selectors, parsed and matched as the API server does."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from dyntoolset.testing.apiserver.resources import bad_request

_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^(([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?)$")
_SET_OP = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\((.*)\)\s*$")
_BINARY_OP = re.compile(r"^\s*([^!=<>\s]+)\s*(==|!=|=|<|>)\s*(.*?)\s*$")


@attrs.frozen
class Requirement:
    """One requirement of a label selector: ``key op values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "<", ">"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a label set satisfies this requirement."""
        has = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        if self.op == "exists":
            return has
        if self.op == "!":
            return not has
        try:
            number = int(str(value))
        except ValueError:
            return False
        bound = int(self.values[0])
        return number < bound if self.op == "<" else number > bound


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _check_key(key: str, text: str) -> None:
    if not _KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise bad_request(f"unable to parse requirement: invalid label key {key!r} in {text!r}")


def _check_value(value: str, text: str) -> None:
    if not _VALUE.match(value) or len(value) > 63:
        raise bad_request(f"unable to parse requirement: invalid label value {value!r} in {text!r}")


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse a ``labelSelector`` query value.

    Supports equality (``a=b``, ``a==b``, ``a!=b``), sets (``a in (b,c)``,
    ``a notin (b)``), existence (``a``, ``!a``) and ``a>1`` / ``a<1``.

    Raises:
        ApiError: 400 BadRequest for a malformed selector, as the API server answers.
    """
    if not text or not text.strip():
        return ()
    requirements: list[Requirement] = []
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise bad_request(
                f"unable to parse requirement: found '', expected: identifier in {text!r}"
            )
        set_match = _SET_OP.match(part)
        if set_match:
            key, op, inner = set_match.groups()
            _check_key(key, text)
            values = tuple(v.strip() for v in inner.split(",")) if inner.strip() else ()
            if not values:
                raise bad_request(f"for '{op}' operators, values set can't be empty in {text!r}")
            for value in values:
                _check_value(value, text)
            requirements.append(Requirement(key, op, values))
            continue
        if part.startswith("!"):
            key = part[1:].strip()
            _check_key(key, text)
            requirements.append(Requirement(key, "!"))
            continue
        binary = _BINARY_OP.match(part)
        if binary:
            key, op, value = binary.groups()
            _check_key(key, text)
            if op in ("<", ">"):
                if not re.fullmatch(r"-?\d+", value):
                    raise bad_request(
                        f"unable to parse requirement: for 'Gt', 'Lt' operators, "
                        f"the value must be an integer in {text!r}"
                    )
            else:
                _check_value(value, text)
            requirements.append(Requirement(key, "=" if op == "==" else op, (value,)))
            continue
        if " " in part or "(" in part or ")" in part:
            raise bad_request(f"unable to parse requirement: {part!r} in {text!r}")
        _check_key(part, text)
        requirements.append(Requirement(part, "exists"))
    return tuple(requirements)


def labels_match(requirements: tuple[Requirement, ...], obj: Mapping[str, Any]) -> bool:
    """Whether an object's labels satisfy every requirement."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(req.matches(labels) for req in requirements)


_FIELDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "metadata.name": lambda o: str((o.get("metadata") or {}).get("name") or ""),
    "metadata.namespace": lambda o: str((o.get("metadata") or {}).get("namespace") or ""),
}


@attrs.frozen
class FieldRequirement:
    """One requirement of a field selector: ``field op value``."""

    field: str
    negate: bool
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object's field has (or, negated, lacks) the value."""
        return (_FIELDS[self.field](obj) == self.value) != self.negate


def parse_field_selector(text: str | None) -> tuple[FieldRequirement, ...]:
    """Parse a ``fieldSelector`` query value (``metadata.name`` and ``metadata.namespace``).

    Raises:
        ApiError: 400 BadRequest for a malformed selector or an unsupported field.
    """
    if not text or not text.strip():
        return ()
    out: list[FieldRequirement] = []
    for raw in text.split(","):
        part = raw.strip()
        match = re.fullmatch(r"([^!=]+?)\s*(==|!=|=)\s*(.*)", part)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = match.groups()
        if field not in _FIELDS:
            raise bad_request(f"field label not supported: {field}")
        out.append(FieldRequirement(field, op == "!=", value))
    return tuple(out)


def fields_match(requirements: tuple[FieldRequirement, ...], obj: Mapping[str, Any]) -> bool:
    """Whether an object satisfies every field requirement."""
    return all(req.matches(obj) for req in requirements)
