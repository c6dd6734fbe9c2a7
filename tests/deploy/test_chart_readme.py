"""The chart's README documents every value of values.yaml, with its default, and nothing else.

Documented values are the keys of values.yaml preceded by a ``# --``
comment (helm-docs' convention); a documented key covers its subtree.
The README's values table must list exactly those keys, each with its
default as JSON; every leaf of values.yaml must be under a documented key;
and test_chart.py's OPTIONS must set every documented value at least once.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.deploy.manifests import CHART
from tests.deploy.test_chart import OPTIONS

KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z][A-Za-z0-9_]*):")


def documented_keys() -> list[str]:
    """Dotted paths of the keys that a ``# --`` comment introduces, in file order."""
    keys: list[str] = []
    stack: list[tuple[int, str]] = []
    described = False
    for line in (CHART / "values.yaml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            described = True
            continue
        if stripped.startswith("#") or not stripped:
            continue
        match = KEY.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        stack = [(i, k) for i, k in stack if i < indent]
        stack.append((indent, match["key"]))
        if described:
            keys.append(".".join(k for _, k in stack))
        described = False
    return keys


def lookup(values: Any, path: str) -> Any:
    for part in path.split("."):
        values = values[part]
    return values


def leaves(values: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the scalar (or empty) values."""
    if isinstance(values, dict) and values:
        return [p for k, v in values.items() for p in leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def readme_rows() -> dict[str, str]:
    """key → default cell of the README's values table."""
    rows: dict[str, str] = {}
    for line in (CHART / "README.md").read_text().splitlines():
        match = re.match(r"^\| `(?P<key>[^`]+)` \| `(?P<default>.*)` \| .+ \|$", line)
        if match:
            rows[match["key"]] = match["default"]
    return rows


def test_the_values_table_lists_every_documented_value_with_its_default() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    expected = {k: json.dumps(lookup(values, k)) for k in documented_keys()}
    assert readme_rows() == expected


def test_every_value_is_documented() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = documented_keys()
    undocumented = [
        leaf
        for leaf in leaves(values)
        if not any(leaf == k or leaf.startswith(f"{k}.") for k in documented)
    ]
    assert undocumented == []


def test_every_documented_value_is_rendered_by_a_test() -> None:
    set_somewhere = {leaf for values in OPTIONS.values() for leaf in leaves(values)}
    untested = [
        k
        for k in documented_keys()
        if not any(s == k or s.startswith(f"{k}.") for s in set_somewhere)
    ]
    assert untested == []


def test_the_reader_of_values_finds_nested_documented_keys() -> None:
    keys = documented_keys()
    assert "image.repository" in keys and "auth.tokenSecret.name" in keys
    assert "image" not in keys  # a group without its own comment
    assert leaves({"a": {"b": 1, "c": {}}, "d": []}) == ["a.b", "a.c", "d"]
