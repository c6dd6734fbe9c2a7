"""Namespace patterns and annotation requirements, against reference implementations."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dyntoolset.matching import AnnotationRequirements, NamespaceFilter, qualified_name_problem

namespaces = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?\Z")
patterns = st.from_regex(r"\A!?[a-z0-9*?]([-a-z0-9*?]{0,6}[a-z0-9*?])?\Z")


def reference_allows(pattern_list: list[str], namespace: str) -> bool:
    """The documented rule, written the obvious way."""
    includes = [p for p in pattern_list if not p.startswith("!")]
    excludes = [p[1:] for p in pattern_list if p.startswith("!")]
    if any(fnmatch.fnmatchcase(namespace, p) for p in excludes):
        return False
    return not includes or any(fnmatch.fnmatchcase(namespace, p) for p in includes)


@given(st.lists(patterns, max_size=5), st.lists(namespaces, min_size=1, max_size=5))
def test_namespace_filter_agrees_with_reference(pattern_list, names):
    ns_filter = NamespaceFilter(pattern_list)
    for name in names + names:  # twice: the cached answer must equal the first
        assert ns_filter.allows(name) == reference_allows(pattern_list, name)


@pytest.mark.parametrize(
    ("pattern_list", "allowed", "refused"),
    [
        ([], ["default", "kube-system"], []),
        (["prod-*"], ["prod-eu", "prod-"], ["production", "staging"]),
        (["!kube-*"], ["default", "monitoring"], ["kube-system", "kube-public"]),
        (["*", "!kube-system"], ["kube-public"], ["kube-system"]),
        (["monitoring", "obs-?"], ["monitoring", "obs-1"], ["obs-12", "monitoring2"]),
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
