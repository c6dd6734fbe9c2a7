"""Namespace and annotation rules from detector configuration.

Compiled once at configuration load; evaluated per Service, so evaluation is
a dict lookup (namespaces are few, Services many) or a handful of mapping
look-ups (annotations).

Namespace patterns (``namespaces:`` of a detector block)
    A list of shell-style patterns (``*`` any run of characters, ``?`` one
    character). A pattern starting with ``!`` excludes. A namespace is
    allowed when it matches no exclusion and, if any inclusion is listed,
    at least one inclusion. An empty list allows every namespace.

Annotation requirements (``required_annotations:`` of a detector block)
    A list of clauses that must *all* hold (AND). A clause is one or more
    alternatives separated by ``|`` of which *one* must hold (OR). An
    alternative is ``key`` (the annotation is present) or ``key=value``
    (present with exactly that value). Keys are Kubernetes qualified names
    (``example.com/name``), so ``|`` and ``=`` never occur in them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import translate

from dyntoolset.urlpolicy import qualified_name_problem

__all__ = ["AnnotationRequirements", "NamespaceFilter", "qualified_name_problem"]

_NAMESPACE_PATTERN = re.compile(r"^[a-z0-9*?]([-a-z0-9*?]{0,61}[a-z0-9*?])?$")


def _compile(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns))


class NamespaceFilter:
    """Which namespaces a detector looks at; see the module docstring."""

    __slots__ = ("_cache", "_exclude", "_include", "patterns")

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        problems = [
            f"invalid namespace pattern {p!r}: use lowercase letters, digits, '-', "
            f"'*' and '?', optionally prefixed by '!' to exclude"
            for p in self.patterns
            if not isinstance(p, str) or not _NAMESPACE_PATTERN.match(p.removeprefix("!"))
        ]
        if problems:
            raise ValueError("; ".join(problems))
        self._include = _compile([p for p in self.patterns if not p.startswith("!")])
        self._exclude = _compile([p[1:] for p in self.patterns if p.startswith("!")])
        self._cache: dict[str, bool] = {}

    def allows(self, namespace: str) -> bool:
        """True if a detector with this filter should look at ``namespace``."""
        try:
            return self._cache[namespace]
        except KeyError:
            allowed = (self._exclude is None or not self._exclude.match(namespace)) and (
                self._include is None or bool(self._include.match(namespace))
            )
            self._cache[namespace] = allowed
            return allowed

    def literal_namespaces(self) -> frozenset[str] | None:
        """The namespaces this filter allows when that is a finite list of names, else ``None``.

        Finite means at least one inclusion and no wildcard in any inclusion
        (``["monitoring", "observability", "!observability"]`` is
        ``{"monitoring"}``); an empty filter or ``["prod-*"]`` is ``None``.
        """
        included = [p for p in self.patterns if not p.startswith("!")]
        if not included or any(c in p for p in included for c in "*?"):
            return None
        return frozenset(p for p in included if self.allows(p))

    @property
    def allows_all(self) -> bool:
        """True when no pattern is set (the engine skips the check)."""
        return not self.patterns

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NamespaceFilter) and other.patterns == self.patterns

    def __hash__(self) -> int:
        return hash(self.patterns)

    def __repr__(self) -> str:
        return f"NamespaceFilter({list(self.patterns)!r})"


class AnnotationRequirements:
    """Annotations a Service must carry; see the module docstring."""

    __slots__ = ("clauses", "spec")

    def __init__(self, spec: Iterable[str] = ()) -> None:
        self.spec: tuple[str, ...] = tuple(spec)
        clauses: list[tuple[tuple[str, str | None], ...]] = []
        problems: list[str] = []
        for item in self.spec:
            alternatives: list[tuple[str, str | None]] = []
            for raw in item.split("|"):
                key, eq, value = raw.strip().partition("=")
                key = key.strip()
                problem = qualified_name_problem(key)
                if problem:
                    problems.append(problem)
                alternatives.append((key, value.strip() if eq else None))
            clauses.append(tuple(alternatives))
        if problems:
            raise ValueError("; ".join(problems))
        self.clauses = tuple(clauses)

    def satisfied_by(self, annotations: Mapping[str, str]) -> bool:
        """True if every clause has one alternative present in ``annotations``."""
        return self.unmet_clause(annotations) is None

    def unmet_clause(self, annotations: Mapping[str, str]) -> str | None:
        """The first clause (as configured, e.g. ``"a/b=1|c/d"``) that ``annotations`` fail, or ``None``."""
        for spec, alternatives in zip(self.spec, self.clauses, strict=True):
            for key, value in alternatives:
                found = annotations.get(key)
                if found is not None and (value is None or found == value):
                    break
            else:
                return spec
        return None

    def __bool__(self) -> bool:
        return bool(self.clauses)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnnotationRequirements) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def __repr__(self) -> str:
        return f"AnnotationRequirements({list(self.spec)!r})"
