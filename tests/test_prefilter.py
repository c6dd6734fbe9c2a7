"""Detector prefilters: the declaration, the compiled index, and discovery's use of them."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dyntoolset.config import load_config_text
from dyntoolset.detector import DetectContext, Detector
from dyntoolset.discovery import create_detectors, discover, explain
from dyntoolset.errors import InvalidService
from dyntoolset.model import Discovered, Port, Service
from dyntoolset.plugins import validate_extension
from dyntoolset.prefilter import Prefilter, PrefilterIndex
from dyntoolset.testing import check_detector, make_plugin_set, make_service, prefilter_problems
from tests.helpers import LabelDetector
from tests.property_support import Outcomes

# -- the declaration ------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({}, ValueError, "needs at least one condition"),
        ({"label_keys": "app"}, TypeError, "label_keys must be a collection of strings"),
        ({"port_names": ["web", ""]}, TypeError, "port_names must hold non-empty strings"),
        ({"annotation_keys": [1]}, TypeError, "annotation_keys must hold non-empty strings"),
        ({"label_values": ["app"]}, TypeError, "label_values must map label keys"),
        ({"label_values": {"": ["x"]}}, TypeError, "label_values keys must be non-empty"),
        ({"label_prefixes": {"chart": []}}, ValueError, r"label_prefixes\['chart'\] is empty"),
        ({"label_suffixes": {"app": "-x"}}, TypeError, r"label_suffixes\['app'\] must be a coll"),
    ],
)
def test_a_malformed_prefilter_is_refused_with_the_field_named(arguments, error, message):
    with pytest.raises(error, match=message):
        Prefilter(**arguments)


def test_each_condition_admits_on_its_own():
    prefilter = Prefilter(
        label_values={"app": ["loki"]},
        label_prefixes={"helm.sh/chart": ["loki-"]},
        label_suffixes={"app": ["-loki"]},
        label_keys=["loki.grafana.com/name"],
        annotation_keys=["loki.example/enabled"],
        port_names=["http-loki"],
    )
    admitted = [
        make_service("a", labels={"app": "loki"}),
        make_service("b", labels={"helm.sh/chart": "loki-6.1.0"}),
        make_service("c", labels={"app": "my-loki"}),
        make_service("d", labels={"loki.grafana.com/name": ""}),
        make_service("e", annotations={"loki.example/enabled": "x"}),
        make_service("f", ports=[(3100, "http-loki")]),
    ]
    refused = [
        make_service("g", labels={"app": "lokii", "helm.sh/chart": "grafana-1.0"}),
        make_service("h", labels={"other": "loki"}, annotations={"app": "loki"}),
        make_service("i", ports=[(3100, "http")]),
    ]
    assert all(prefilter.admits(s) for s in admitted)
    assert not any(prefilter.admits(s) for s in refused)


def test_a_detector_whose_prefilter_is_not_a_prefilter_does_not_load():
    class Sloppy(LabelDetector):
        name = "sloppy"
        prefilter = {"label_values": {"app": ["x"]}}  # type: ignore[assignment]

    problem = validate_extension("detector", Sloppy)
    assert problem is not None and "Sloppy.prefilter must be a dyntoolset.plugin.Prefilter" in (
        problem
    )


# -- the compiled index against the plain reading ---------------------------------

_KEYS = ["app", "app.kubernetes.io/name", "helm.sh/chart", "component"]
_WORDS = ["loki", "tempo", "loki-6.1", "tempo-1.2", "my-loki", "x", "loki-"]
_words = st.sampled_from(_WORDS)


@st.composite
def _prefilters(draw: st.DrawFn) -> Prefilter | None:
    if draw(st.integers(0, 5)) == 0:
        return None
    fields = {
        "label_values": st.dictionaries(st.sampled_from(_KEYS), st.sets(_words, min_size=1)),
        "label_prefixes": st.dictionaries(st.sampled_from(_KEYS), st.sets(_words, min_size=1)),
        "label_suffixes": st.dictionaries(st.sampled_from(_KEYS), st.sets(_words, min_size=1)),
        "label_keys": st.sets(st.sampled_from(_KEYS)),
        "annotation_keys": st.sets(st.sampled_from(_KEYS)),
        "port_names": st.sets(_words),
    }
    chosen = draw(st.sets(st.sampled_from(sorted(fields)), min_size=1, max_size=3))
    arguments = {name: draw(fields[name]) for name in chosen}
    if not any(arguments.values()):
        arguments["port_names"] = {draw(_words)}
    return Prefilter(**arguments)


@st.composite
def _services(draw: st.DrawFn) -> Service:
    return Service(
        name="s",
        namespace="ns",
        labels=draw(st.dictionaries(st.sampled_from(_KEYS), _words, max_size=3)),
        annotations=draw(st.dictionaries(st.sampled_from(_KEYS), _words, max_size=1)),
        ports=tuple(
            Port(80 + i, name) for i, name in enumerate(draw(st.lists(_words, max_size=2)))
        ),
    )


@pytest.mark.outcomes({"admitted": 0.3, "not admitted": 0.3})
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_prefilters(), min_size=1, max_size=6), st.lists(_services(), max_size=6))
def test_the_index_selects_exactly_the_detectors_whose_prefilter_admits(
    outcomes: Outcomes, prefilters: list[Prefilter | None], services: list[Service]
) -> None:
    index = PrefilterIndex(prefilters)
    for service in services:
        expected = {i for i, p in enumerate(prefilters) if p is None or p.admits(service)}
        mask = index.candidates(service)
        assert {i for i in range(len(prefilters)) if mask >> i & 1} == expected
        assert mask < 1 << len(prefilters)
        outcomes.saw(
            *("admitted" if i in expected else "not admitted" for i in range(len(prefilters)))
        )


# -- discovery consults only admitted detectors -------------------------------------

CALLS: list[tuple[str, str]] = []


class CountingDetector(LabelDetector):
    """Matches ``app: alpha``; promises that with a prefilter; records every call."""

    prefilter = Prefilter(label_values={"app": ["alpha"]})

    def detect(self, service: Service, ctx: DetectContext) -> Discovered | None:
        CALLS.append((self.name, service.name))
        return super().detect(service, ctx)


class CountingGreedy(CountingDetector):
    """No prefilter: consulted on every Service."""

    name = "greedy"
    default_priority = 50
    prefilter = None

    def detect(self, service: Service, ctx: DetectContext) -> Discovered | None:
        CALLS.append((self.name, service.name))
        port = service.ports[0] if service.ports else None
        return None if port is None else self.discovered(service, port, ctx)


def _active(*classes: type[Detector], text: str = ""):
    plugins = make_plugin_set(*classes, builtin_detectors=False)
    return create_detectors(load_config_text(text, "test", plugins), plugins)


def test_discovery_calls_a_prefiltered_detector_only_for_admitted_services():
    CALLS.clear()
    services = [
        make_service("one", labels={"app": "alpha"}),
        make_service("two", labels={"app": "beta"}),
        make_service("three"),
    ]
    result = discover(services, _active(CountingDetector, CountingGreedy))
    assert sorted(CALLS) == [
        ("alpha", "one"),
        ("greedy", "three"),
        ("greedy", "two"),
    ]
    assert [(d.service.name, d.detector) for d in result.discovered] == [
        ("one", "alpha"),
        ("three", "greedy"),
        ("two", "greedy"),
    ]
    assert result.detectors["alpha"].found == 1 and result.detectors["greedy"].found == 2


def test_a_filtered_then_matched_service_counts_as_matched_not_skipped():
    services = [make_service("one", "other", labels={"app": "alpha"})]
    result = discover(
        services,
        _active(CountingDetector, CountingGreedy, text="detectors: {alpha: {namespaces: [obs]}}"),
    )
    assert [d.detector for d in result.discovered] == ["greedy"]
    assert result.skips == [] and sum(result.skip_counts.values()) == 0


def test_explain_reports_an_unmet_prefilter_as_no_match_without_calling_detect():
    CALLS.clear()
    [verdict] = explain(make_service("two", labels={"app": "beta"}), _active(CountingDetector))
    assert (verdict.verdict, verdict.detail) == ("no_match", "")
    assert CALLS == []
    # The filters come first, as in discovery's step: a filtered verdict stays one.
    [filtered] = explain(
        make_service("two", "other", labels={"app": "beta"}),
        _active(CountingDetector, text="detectors: {alpha: {namespaces: [obs]}}"),
    )
    assert (filtered.verdict, filtered.would_match) == ("namespace_filtered", False)


# -- the promise, checked by dyntoolset.testing --------------------------------------


class BrokenPromise(LabelDetector):
    """Takes ``app: alpha`` or ``app.kubernetes.io/name: alpha`` but declares only the first."""

    prefilter = Prefilter(label_values={"app": ["alpha"]})

    def detect(self, service: Service, ctx: DetectContext) -> Discovered | None:
        labels = service.labels
        if labels.get("app.kubernetes.io/name") == "alpha" and "bad" in labels:
            raise InvalidService("bad")
        if "alpha" not in (labels.get("app"), labels.get("app.kubernetes.io/name")):
            return None
        return self.discovered(service, Port(80), ctx)


def test_a_broken_prefilter_promise_is_reported_for_a_sample_and_its_reductions():
    both = make_service("both", labels={"app": "alpha", "app.kubernetes.io/name": "alpha"})
    problems = prefilter_problems(BrokenPromise, [both])
    # The sample itself is admitted; without its app label it is not, but still matches.
    assert len(problems) == 1 and "detect() matches" in problems[0]
    assert "'app.kubernetes.io/name': 'alpha'" in problems[0]
    invalid = make_service(
        "inv", labels={"app.kubernetes.io/name": "alpha", "bad": "1"}, ports=[80]
    )
    # The sample is refused as invalid; without its "bad" label it matches.
    refused, matched = prefilter_problems(BrokenPromise, [invalid])
    assert "detect() refuses as invalid" in refused and "detect() matches" in matched
    with pytest.raises(AssertionError, match=r"BrokenPromise\.prefilter does not admit"):
        check_detector(BrokenPromise, [both])


def test_a_kept_promise_and_a_detector_without_prefilter_report_nothing():
    sample = make_service("s", labels={"app": "alpha", "app.kubernetes.io/name": "alpha"})
    assert prefilter_problems(CountingDetector, [sample]) == []
    assert prefilter_problems(LabelDetector, [sample]) == []


def test_charts_admit_a_chart_label_with_a_version_on_either_chart_label_only():
    prefilter = Prefilter(charts=["grafana"], label_prefixes={"helm.sh/chart": ["x-"]})
    assert prefilter.admits(make_service("a", labels={"helm.sh/chart": "grafana-8.5.1"}))
    assert prefilter.admits(make_service("b", labels={"chart": "grafana-6.0.0"}))
    assert prefilter.admits(make_service("c", labels={"helm.sh/chart": "x-1"}))
    for other in ("grafana-agent-0.4.1", "grafana", "grafana-", "mygrafana-1.0"):
        assert not prefilter.admits(make_service("d", labels={"helm.sh/chart": other})), other
    assert not prefilter.admits(make_service("e", labels={"app": "grafana-1.0"}))
    with pytest.raises(TypeError, match="charts must be a collection of strings"):
        Prefilter(charts="grafana")
