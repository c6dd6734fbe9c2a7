"""The bounded YAML loader for untrusted documents.

Configuration, manifests, ``--existing`` ConfigMaps and ``overrides.yaml``
are all read here: PyYAML's safe loader with size, alias and depth caps, no
key written twice, and every error with its line and column.
"""

from __future__ import annotations

from typing import Any

import yaml

from dyntoolset.errors import Problem, describe

#: YAML documents larger than this are refused before parsing.
MAX_YAML_BYTES = 1024 * 1024
#: YAML aliases allowed in one document (bounds "billion laughs" expansion).
MAX_YAML_ALIASES = 100
#: Nesting allowed in one YAML document (deeper documents would exhaust the
#: interpreter's recursion limit in the parser).
MAX_YAML_DEPTH = 100


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
