"""Namespace patterns and annotation requirements, against reference implementations.

The references are written from the documented rules, independently of the
code under test: the glob reference is a small dynamic-programming matcher,
not :mod:`fnmatch` (which the implementation uses).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dyntoolset.matching import AnnotationRequirements, NamespaceFilter, qualified_name_problem
from tests.property_support import ACCEPT_SHARE, Outcomes, one_in

NAMESPACE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-"


def glob_matches(pattern: str, text: str) -> bool:
    """``*`` matches any run of characters (empty too), ``?`` exactly one, anything
    else itself, case-sensitively; the whole of ``text`` must be matched."""
    # reachable[j]: the pattern read so far can match text[:j].
    reachable = [True] + [False] * len(text)
    for symbol in pattern:
        if symbol == "*":
            for j in range(1, len(text) + 1):
                reachable[j] = reachable[j] or reachable[j - 1]
        else:
            reachable = [False] + [
                reachable[j] and (symbol == "?" or symbol == text[j]) for j in range(len(text))
            ]
    return reachable[-1]


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("", "", True),
        ("*", "", True),
        ("?", "", False),
        ("a*b", "ab", True),
        ("a*b", "axxb", True),
        ("a*b", "axxbc", False),
        ("*-system", "kube-system", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("**x", "x", True),
        ("prod-*", "Prod-eu", False),
    ],
)
def test_the_glob_reference_itself(pattern: str, text: str, expected: bool) -> None:
    assert glob_matches(pattern, text) is expected


def reference_allows(pattern_list: list[str], namespace: str) -> bool:
    """The documented rule, written the obvious way."""
    includes = [p for p in pattern_list if not p.startswith("!")]
    excludes = [p[1:] for p in pattern_list if p.startswith("!")]
    if any(glob_matches(p, namespace) for p in excludes):
        return False
    return not includes or any(glob_matches(p, namespace) for p in includes)


#: Patterns as operators write them, and arbitrary valid ones.
patterns = st.sampled_from(
    ["prod-*", "!kube-*", "*", "monitoring", "obs-?", "*-system", "team-?-*", "!*-test", "a*b*c"]
) | st.from_regex(r"\A!?[a-z0-9*?]([-a-z0-9*?]{0,6}[a-z0-9*?])?\Z")


@st.composite
def matching_name(draw: st.DrawFn, pattern: str) -> str:
    """A namespace that ``pattern`` (without its ``!``) matches."""
    parts = []
    for symbol in pattern.removeprefix("!"):
        if symbol == "*":
            parts.append(draw(st.text(NAMESPACE_CHARS, max_size=4)))
        elif symbol == "?":
            parts.append(draw(st.sampled_from(NAMESPACE_CHARS)))
        else:
            parts.append(symbol)
    return "".join(parts)


@st.composite
def near_miss(draw: st.DrawFn, name: str) -> str:
    """``name`` one edit away: a character changed, added or dropped, or a letter
    upper-cased (matching is case-sensitive)."""
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    edit = draw(st.sampled_from(["change", "add", "drop", "upper"]))
    if edit == "upper" and letters:
        i = draw(st.sampled_from(letters))
        return name[:i] + name[i].upper() + name[i + 1 :]
    if edit == "drop" and name:
        i = draw(st.integers(0, len(name) - 1))
        return name[:i] + name[i + 1 :]
    i = draw(st.integers(0, len(name)))
    new = draw(st.sampled_from(NAMESPACE_CHARS))
    return name[:i] + new + name[i + (edit == "change") :]


@st.composite
def namespaces_for(draw: st.DrawFn, pattern_list: list[str]) -> list[str]:
    """Mostly namespaces the patterns match, some near misses, a few unrelated."""
    names = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["match"] * 3 + ["near miss"] * 2 + ["unrelated"]))
        if kind == "unrelated" or not pattern_list:
            names.append(draw(st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?\Z")))
            continue
        name = draw(matching_name(draw(st.sampled_from(pattern_list))))
        names.append(name if kind == "match" else draw(near_miss(name)))
    return names


@pytest.mark.outcomes({"allowed": ACCEPT_SHARE, "refused": 0.2, "a pattern matched": 0.3})
@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_namespace_filter_agrees_with_reference(outcomes: Outcomes, data: st.DataObject) -> None:
    # An empty list (every namespace allowed) is a deliberate minority.
    empty = one_in(data.draw, 10)
    pattern_list = [] if empty else data.draw(st.lists(patterns, min_size=1, max_size=4))
    names = data.draw(namespaces_for(pattern_list))
    ns_filter = NamespaceFilter(pattern_list)
    for name in names + names:  # twice: the cached answer must equal the first
        allowed = reference_allows(pattern_list, name)
        assert ns_filter.allows(name) is allowed, (pattern_list, name)
    # Both answers, and pattern hits, must be common, or the agreement says little.
    for name in names:
        hit = any(glob_matches(p.removeprefix("!"), name) for p in pattern_list)
        outcomes.saw(
            "allowed" if reference_allows(pattern_list, name) else "refused",
            "a pattern matched" if hit else "no pattern matched",
        )


@pytest.mark.parametrize(
    ("pattern_list", "allowed", "refused"),
    [
        ([], ["default", "kube-system"], []),
        (["prod-*"], ["prod-eu", "prod-"], ["production", "staging"]),
        (["!kube-*"], ["default", "monitoring"], ["kube-system", "kube-public"]),
        (["*", "!kube-system"], ["kube-public"], ["kube-system"]),
        (["monitoring", "obs-?"], ["monitoring", "obs-1"], ["obs-12", "monitoring2"]),
        (["prod-*"], ["prod-eu"], ["Prod-eu", "PROD-EU"]),  # case-sensitive
        (["!kube-*"], ["Kube-system"], ["kube-system"]),
    ],
)
def test_namespace_filter_examples(pattern_list, allowed, refused):
    ns_filter = NamespaceFilter(pattern_list)
    assert all(ns_filter.allows(n) for n in allowed)
    assert not any(ns_filter.allows(n) for n in refused)


@pytest.mark.parametrize("bad", ["Prod", "a b", "", "!", "x" * 64, "ns/x", "[ab]"])
def test_invalid_namespace_patterns_are_rejected(bad):
    with pytest.raises(ValueError, match="invalid namespace pattern"):
        NamespaceFilter([bad])


keys = st.sampled_from(["a.io/x", "a.io/y", "b.io/z", "plain"])
values = st.sampled_from(["1", "2", "enabled"])
alternatives = st.tuples(keys, st.none() | values)
clauses = st.lists(alternatives, min_size=1, max_size=3)


def spell(clause: list[tuple[str, str | None]]) -> str:
    return " | ".join(k if v is None else f"{k}={v}" for k, v in clause)


def reference_satisfied(clause_list, annotations) -> bool:
    return all(
        any(k in annotations and (v is None or annotations[k] == v) for k, v in clause)
        for clause in clause_list
    )


@given(st.lists(clauses, max_size=4), st.dictionaries(keys, values, max_size=4))
def test_annotation_requirements_agree_with_reference(clause_list, annotations):
    requirements = AnnotationRequirements([spell(c) for c in clause_list])
    assert requirements.satisfied_by(annotations) == reference_satisfied(clause_list, annotations)


def test_annotation_and_or_and_values():
    req = AnnotationRequirements(
        ["kubernaut.io/toolset=enabled | kubernaut.io/toolset=true", "team"]
    )
    assert req.satisfied_by({"kubernaut.io/toolset": "true", "team": ""})
    assert not req.satisfied_by({"kubernaut.io/toolset": "yes", "team": "a"})
    assert not req.satisfied_by({"kubernaut.io/toolset": "enabled"})
    assert not AnnotationRequirements()  # empty: no requirement
    assert AnnotationRequirements().satisfied_by({})


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("example.com/name", None),
        ("name_with.dots-1", None),
        ("/name", "the prefix must be a DNS subdomain"),
        ("Bad.Prefix/name", "the prefix must be a DNS subdomain"),
        ("example.com/-name", "the name must be 1-63 characters"),
        ("x" * 64, "the name must be 1-63 characters"),
        ("", "the name must be 1-63 characters"),
    ],
)
def test_qualified_names(key, problem):
    found = qualified_name_problem(key)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
