"""dyntoolset.explain: each enabled detector's verdict on one Service, in priority order."""

from __future__ import annotations

import json

import pytest

import dyntoolset
from dyntoolset.config import load_config_text
from dyntoolset.discovery import VERDICTS, create_detectors, discover, explain
from dyntoolset.matching import AnnotationRequirements
from dyntoolset.testing import make_plugin_set, make_service
from tests.helpers import BetaDetector, BrokenDetector, GreedyDetector, LabelDetector, PickyDetector


def detectors(*classes, text: str = ""):
    plugins = make_plugin_set(*classes, builtin_detectors=False)
    config = load_config_text("output: {formats: []}\n" + text, "test", plugins)
    return create_detectors(config, plugins)


def kinds(verdicts):
    return [(v.detector, v.verdict) for v in verdicts]


def test_the_first_match_takes_the_service_and_later_detectors_are_not_consulted():
    active = detectors(BetaDetector, LabelDetector, GreedyDetector)
    verdicts = explain(make_service("a", "obs", labels={"app": "alpha"}), active)
    assert kinds(verdicts) == [
        ("alpha", "match"),
        ("beta", "not_consulted"),
        ("greedy", "not_consulted"),
    ]
    found = verdicts[0].discovered
    assert found is not None and found.endpoint == "http://a.obs.svc.cluster.local:80"
    assert [t.kind for t in found.toolsets] == ["http"]
    assert verdicts[1].detail == f"alpha (priority {verdicts[0].priority}) matched first"
    assert all(v.discovered is None for v in verdicts[1:])


def test_verdicts_follow_the_configured_priority_order():
    active = detectors(LabelDetector, GreedyDetector, text="detectors: {greedy: {priority: 1}}")
    verdicts = explain(make_service("a", labels={"app": "alpha"}), active)
    assert kinds(verdicts) == [("greedy", "match"), ("alpha", "not_consulted")]
    assert [v.priority for v in verdicts] == sorted(v.priority for v in verdicts)


def test_no_match_from_every_detector():
    verdicts = explain(make_service("x"), detectors(LabelDetector, BetaDetector))
    assert kinds(verdicts) == [("alpha", "no_match"), ("beta", "no_match")]


def test_namespace_filter_names_its_patterns_and_whether_the_detector_would_match():
    active = detectors(
        LabelDetector, GreedyDetector, text="detectors: {alpha: {namespaces: ['!kube-*', 'x']}}"
    )
    verdicts = explain(make_service("a", "kube-system", labels={"app": "alpha"}), active)
    assert kinds(verdicts) == [("alpha", "namespace_filtered"), ("greedy", "match")]
    assert verdicts[0].detail == (
        "namespace 'kube-system' is not allowed by namespaces ['!kube-*', 'x']"
    )
    assert verdicts[0].would_match is True
    nginx = explain(make_service("n", "kube-system", labels={"app": "nginx"}), active)
    assert nginx[0].verdict == "namespace_filtered" and nginx[0].would_match is False


def test_annotation_filter_names_the_unmet_clause():
    active = detectors(
        LabelDetector,
        text="detectors:\n  alpha:\n    required_annotations: ['owner', 'team=obs | team=sre']\n",
    )
    service = make_service("a", labels={"app": "alpha"}, annotations={"owner": "me", "team": "x"})
    [verdict] = explain(service, active)
    assert verdict.verdict == "annotation_filtered"
    assert verdict.detail == (
        "required annotation clause 'team=obs | team=sre' of required_annotations "
        "['owner', 'team=obs | team=sre'] is not met"
    )
    assert verdict.would_match is True
    ok = make_service("a", labels={"app": "alpha"}, annotations={"owner": "me", "team": "sre"})
    assert kinds(explain(ok, active)) == [("alpha", "match")]


def test_invalid_gives_the_reason_and_stops_later_detectors():
    active = detectors(PickyDetector, GreedyDetector)
    verdicts = explain(make_service("p", labels={"app": "picky", "mode": "loose"}), active)
    assert kinds(verdicts) == [("picky", "invalid"), ("greedy", "not_consulted")]
    assert verdicts[0].detail == "label mode must be 'strict'"
    assert verdicts[1].detail.startswith("picky (priority ") and "found the Service invalid" in (
        verdicts[1].detail
    )


def test_a_raising_detector_is_reported_and_the_next_one_still_runs():
    active = detectors(BrokenDetector, LabelDetector)
    verdicts = explain(make_service("a", labels={"app": "alpha"}), active)
    assert kinds(verdicts) == [("broken", "error"), ("alpha", "match")]
    assert verdicts[0].detail == "RuntimeError('boom')"


def test_no_enabled_detector_means_no_verdicts():
    assert explain(make_service("a"), []) == []


def test_explain_agrees_with_discover_on_every_service():
    """One code path: the detector explain says takes a Service is the one discover reports."""
    active = detectors(
        PickyDetector,
        BrokenDetector,
        LabelDetector,
        GreedyDetector,
        text="detectors: {alpha: {namespaces: ['!kube-*']}}",
    )
    services = [
        make_service("a", "default", labels={"app": "alpha"}),
        make_service("b", "kube-system", labels={"app": "alpha"}),
        make_service("c", "default", labels={"app": "picky", "mode": "loose"}),
        make_service("d", "default", labels={"app": "picky", "mode": "strict"}),
        make_service("e", "default", ports=[]),
    ]
    result = discover(services, active)
    taken = {d.key: d.detector for d in result.discovered}
    invalid = {s.service for s in result.skips if s.reason == "invalid"}
    for service in services:
        verdicts = explain(service, active)
        matches = [v.detector for v in verdicts if v.verdict == "match"]
        assert matches == ([taken[service.key]] if service.key in taken else [])
        assert any(v.verdict == "invalid" for v in verdicts) == (service.key in invalid)
        assert {v.verdict for v in verdicts} <= set(VERDICTS)


def test_a_filtered_skip_names_the_same_rule_as_explain():
    """Discovery's skips (the services API, the CLI summary) word a filter as explain does."""
    active = detectors(
        LabelDetector,
        text="detectors:\n  alpha:\n    namespaces: ['!kube-*']\n"
        "    required_annotations: ['team=obs']\n",
    )
    services = [
        make_service("a", "kube-system", labels={"app": "alpha"}, annotations={"team": "obs"}),
        make_service("b", "default", labels={"app": "alpha"}),
    ]
    skips = {s.service: s for s in discover(services, active).skips}
    for service in services:
        [verdict] = explain(service, active)
        skip = skips[service.key]
        assert (skip.reason, skip.detector) == (verdict.verdict, "alpha")
        assert skip.detail == f"matches alpha, but {verdict.detail}"
    assert skips["kube-system/a"].detail == (
        "matches alpha, but namespace 'kube-system' is not allowed by namespaces ['!kube-*']"
    )
    assert skips["default/b"].detail == (
        "matches alpha, but required annotation clause 'team=obs' of required_annotations "
        "['team=obs'] is not met"
    )


def test_to_dict_is_json_ready_and_carries_the_match():
    active = detectors(LabelDetector, GreedyDetector, text="detectors: {alpha: {namespaces: [x]}}")
    verdicts = explain(make_service("a", labels={"app": "alpha"}, ports=[(8080, "web")]), active)
    rows = json.loads(json.dumps([v.to_dict() for v in verdicts]))
    assert rows[0]["verdict"] == "namespace_filtered" and rows[0]["would_match"] is True
    assert "endpoint" not in rows[0]
    assert rows[1] == {
        "detector": "greedy",
        "priority": verdicts[1].priority,
        "verdict": "match",
        "detail": "",
        "type": "greedy",
        "endpoint": "http://a.default.svc.cluster.local:8080",
        "port": {"port": 8080, "name": "web"},
        "health_path": "/healthz",
        "health_check": "http",
        "toolsets": ["http"],
    }


def test_explain_is_public_api_and_an_engine_method():
    assert dyntoolset.explain is explain
    assert {"explain", "Verdict", "VERDICTS"} <= set(dyntoolset.__all__)
    engine = dyntoolset.Engine.from_text(
        "output: {formats: []}\n", "test", make_plugin_set(LabelDetector, builtin_detectors=False)
    )
    assert kinds(engine.explain(make_service("a", labels={"app": "alpha"}))) == [("alpha", "match")]


@pytest.mark.parametrize(
    ("spec", "annotations", "unmet"),
    [
        (["a"], {}, "a"),
        (["a", "b=1|c"], {"a": ""}, "b=1|c"),
        (["a", "b=1|c"], {"a": "", "b": "2"}, "b=1|c"),
        (["a", "b=1|c"], {"a": "", "b": "1"}, None),
        (["a", "b=1|c"], {"a": "", "c": "x"}, None),
    ],
)
def test_unmet_clause_is_the_first_failing_clause_as_configured(spec, annotations, unmet):
    required = AnnotationRequirements(spec)
    assert required.unmet_clause(annotations) == unmet
    assert required.satisfied_by(annotations) is (unmet is None)
