"""Write docs/configuration-reference.md from the configuration schema.

The tables are generated, never written by hand: every field of the attrs
classes under :class:`dyntoolset.config.RawConfig` (walked, so a section
added to the schema appears on its own), its type, default, constraint and
meaning (the field's ``#:`` comment in the source), then the ``Settings``
class of every built-in detector and of every plugin package in
``plugins/`` (which must be installed). ``tests/test_config_reference.py``
regenerates the page and compares, so it cannot drift from the code.

Usage::

    python scripts/config_reference.py            # print the page
    python scripts/config_reference.py --write    # write docs/configuration-reference.md
    python scripts/config_reference.py --check    # exit 1 when the file is stale
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
import tomllib
import types
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal

import attrs

from dyntoolset import values
from dyntoolset.config import RawConfig
from dyntoolset.credentials import CredentialSettings, accepted_credential_fields
from dyntoolset.matching import AnnotationRequirements, NamespaceFilter
from dyntoolset.plugins import BUILTIN_DISTRIBUTION, load_plugins, normalize

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "configuration-reference.md"

# What each validated type is, and the rule it enforces (the checks themselves
# are in dyntoolset.values and dyntoolset.urlpolicy; bounds come from there).
_NAMED_TYPES: dict[object, tuple[str, str]] = {
    values.Seconds: (
        "duration",
        f"positive, at most {values.MAX_DURATION_SECONDS / 3600:.0f}h; "
        "seconds or `5s`, `500ms`, `1m30s`, `2h`",
    ),
    values.HealthPath: ("path", "[health path rules](health-checks.md#ssrf-rules)"),
    values.DnsName: ("DNS name", "RFC 1123 subdomain"),
    values.ClusterDomain: ("DNS name", "at most 121 characters"),
    values.DnsLabel: ("DNS label", "no dots, at most 63 characters"),
    values.HostPattern: (
        "host pattern",
        "`*.example.com`; no IP literals, `localhost` or metadata names",
    ),
    values.Network: ("CIDR", "`127.0.0.0/8` or one address"),
    values.RawMapping: ("mapping", ""),
    NamespaceFilter: (
        "list of namespace patterns",
        "[lowercase, `*` `?`, `!` excludes](configuration.md#namespace-patterns)",
    ),
    AnnotationRequirements: (
        "list of annotation clauses",
        "[`key`, `key=value`, `a | b`](configuration.md#annotation-requirements)",
    ),
    bool: ("bool", ""),
    str: ("string", ""),
    int: ("int", ""),
    float: ("number", ""),
}


def describe_type(tp: Any) -> tuple[str, str]:
    """``(type, constraint)`` of a field type, for the tables."""
    if tp in values.INT_BOUNDS:
        low, high = values.INT_BOUNDS[tp]
        return "int", f"{low} … {high:,}"
    if tp in _NAMED_TYPES:
        return _NAMED_TYPES[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of", ", ".join(f"`{a}`" for a in args)
    if origin in (types.UnionType, typing.Union):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return describe_type(rest[0])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        inner, constraint = describe_type(args[0])
        return f"list of {inner}", constraint
    if origin is dict and attrs.has(args[1]):
        return "mapping of name → block", "names as listed by `dyntoolset plugins`"
    if attrs.has(tp):
        return "mapping", ""
    return getattr(tp, "__name__", str(tp)), ""


def _attrs_class(tp: Any) -> type | None:
    """The attrs class a field holds (directly, optionally, or as a mapping's values)."""
    if attrs.has(tp):
        return typing.cast(type, tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (types.UnionType, typing.Union) and len(args) == 1:
        return _attrs_class(args[0])
    if typing.get_origin(tp) is dict:
        args = args[1:]
    if len(args) == 1 and attrs.has(args[0]):
        return typing.cast(type, args[0])
    return None


def _is_mapping_of_blocks(tp: Any) -> bool:
    if typing.get_origin(tp) is dict:
        return True
    return any(_is_mapping_of_blocks(a) for a in typing.get_args(tp) if a is not type(None))


def validator_rule(field: attrs.Attribute[Any]) -> str:
    """The rule an attrs validator enforces, from its ``attrs validator: …`` docstring."""
    doc = inspect.getdoc(field.validator) if field.validator is not None else None
    prefix = "attrs validator: "
    if doc and doc.startswith(prefix):
        return doc.split("\n\n")[0][len(prefix) :].rstrip(".").replace("``", "`")
    return ""


def format_duration(seconds: float) -> str:
    """``300.0`` → ``5m``, ``90.0`` → ``1m30s``: how the defaults are written in YAML."""
    if seconds != int(seconds):
        return f"{seconds * 1000:.0f}ms"
    rest, parts = int(seconds), []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def describe_default(field: attrs.Attribute[Any], tp: Any) -> str:
    default = field.default
    if default is attrs.NOTHING:
        return "required"
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    if default is None:
        return "unset"
    if attrs.has(type(default)):
        return "see below"
    if isinstance(default, NamespaceFilter):
        return f"`{list(default.patterns)}`"
    if isinstance(default, AnnotationRequirements):
        return f"`{list(default.spec)}`"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if tp is values.Seconds or values.Seconds in typing.get_args(tp):
        return f"`{format_duration(default)}`"
    if isinstance(default, tuple):
        return f"`{list(default)}`"
    if default == "":
        return '`""`'
    return f"`{default}`"


@cache
def _comments(cls: type) -> dict[str, str]:
    """The ``#:`` comment above each annotated name in ``cls``'s own body."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    found: dict[str, str] = {}
    (node,) = ast.parse(source).body
    assert isinstance(node, ast.ClassDef)
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            text: list[str] = []
            index = item.lineno - 2
            while index >= 0 and lines[index].strip().startswith("#:"):
                text.insert(0, lines[index].strip()[2:].strip())
                index -= 1
            found[item.target.id] = " ".join(text)
    return found


def meaning(cls: type, name: str) -> str:
    for klass in cls.__mro__:
        text = _comments(klass).get(name)
        if text:
            # reST to Markdown: ``code`` and :class:`~a.b.C` become `code` and `C`.
            text = re.sub(r":\w+:`~?([^`]+)`", lambda m: f"`{m.group(1).split('.')[-1]}`", text)
            return text.replace("``", "`").replace("|", "\\|")
    return ""


def rows(cls: type, names: tuple[str, ...] | None = None) -> Iterator[str]:
    fields = attrs.fields(attrs.resolve_types(cls))
    for field in fields:
        if names is not None and field.name not in names:
            continue
        kind, constraint = describe_type(field.type)
        constraint = "; ".join(c for c in (constraint, validator_rule(field)) if c)
        constraint = constraint.replace("|", "\\|")  # a table cell
        default = describe_default(field, field.type)
        yield f"| `{field.name}` | {kind} | {default} | {constraint} | {meaning(cls, field.name)} |"


HEADER = "| key | type | default | constraint | meaning |\n|---|---|---|---|---|"


def sections(cls: type, path: str) -> Iterator[str]:
    """A table for ``cls`` at ``path``, then one for each attrs class below it."""
    title = "Top level" if not path else f"`{path}`"
    yield f"## {title}\n"
    doc = inspect.getdoc(cls) or ""
    if path and doc:
        yield doc.split("\n\n")[0].replace("``", "`") + "\n"
    yield HEADER
    yield from rows(cls)
    yield ""
    for field in attrs.fields(attrs.resolve_types(cls)):
        inner = _attrs_class(field.type)
        if inner is None:
            continue
        key = f"{path}.{field.name}" if path else field.name
        if _is_mapping_of_blocks(field.type):
            key += ".<name>"
        yield from sections(inner, key)


def plugin_distributions() -> list[str]:
    names = []
    for pyproject in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        with pyproject.open("rb") as handle:
            names.append(normalize(tomllib.load(handle)["project"]["name"]))
    return names


def detector_sections() -> Iterator[str]:
    plugins = load_plugins(only=plugin_distributions())
    if plugins.failures:
        sys.exit(
            "config_reference: every package of plugins/ must be installed and load: "
            + "; ".join(str(f) for f in plugins.failures)
        )
    yield "## Detector settings: `detectors.<name>.config`\n"
    yield (
        "Each detector's `Settings` class: the keys its `config:` block takes. "
        "Credential keys follow [the credential rules](configuration.md#credentials-and-tls); "
        "only those the detector's HolmesGPT toolset can carry are listed.\n"
    )
    infos = sorted(
        plugins.detectors.values(),
        key=lambda i: (i.distribution != BUILTIN_DISTRIBUTION, i.distribution, i.name),
    )
    for info in infos:
        settings = info.cls.Settings
        source = "built in" if info.distribution == BUILTIN_DISTRIBUTION else info.distribution
        yield f"### `{info.name}` ({source})\n"
        fields = attrs.fields(settings) if attrs.has(settings) else ()
        if not fields:
            yield "No settings.\n"
            continue
        names = None
        if issubclass(settings, CredentialSettings):
            own = tuple(f.name for f in fields if f.name not in _credential_names())
            names = accepted_credential_fields(settings.auth_keys) + own
        yield HEADER
        yield from rows(settings, names)
        yield ""


@cache
def _credential_names() -> frozenset[str]:
    return frozenset(f.name for f in attrs.fields(CredentialSettings))


def page() -> str:
    parts = [
        "# Configuration reference (generated)\n",
        "<!-- Generated by scripts/config_reference.py from the attrs schema in "
        "src/dyntoolset/config.py and the detectors' Settings classes. Do not edit: "
        "run `python scripts/config_reference.py --write`. -->\n",
        "Every key of the configuration file, with its type, default and constraint. "
        "How the file is read, what the keys are for and examples: "
        "[the configuration guide](configuration.md). "
        "`dyntoolset config validate FILE` checks a file against exactly these rules.\n",
        *sections(RawConfig, ""),
        *detector_sections(),
    ]
    return "\n".join(parts).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    text = page()
    if "--write" in argv:
        PAGE.write_text(text, encoding="utf-8")
    elif "--check" in argv:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is stale: python scripts/config_reference.py --write", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
