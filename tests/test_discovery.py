"""The discovery engine: order, first match, filters, skip reasons, isolation."""

from __future__ import annotations

import logging
import types

import pytest

from dyntoolset.config import load_config_text
from dyntoolset.discovery import create_detectors, discover
from dyntoolset.testing import make_plugin_set, make_service
from tests.helpers import BetaDetector, BrokenDetector, GreedyDetector, LabelDetector, PickyDetector


def engine(*classes, text: str = ""):
    plugins = make_plugin_set(*classes, builtin_detectors=False)
    config = load_config_text("output: {formats: []}\n" + text, "test", plugins)
    return create_detectors(config, plugins)


def test_first_match_in_priority_order_wins():
    detectors = engine(LabelDetector, GreedyDetector)
    result = discover([make_service("a", labels={"app": "alpha"})], detectors)
    assert [d.detector for d in result.discovered] == ["alpha"]
    reordered = engine(LabelDetector, GreedyDetector, text="detectors: {greedy: {priority: 1}}")
    result = discover([make_service("a", labels={"app": "alpha"})], reordered)
    assert [d.detector for d in result.discovered] == ["greedy"]


def test_disabled_detectors_do_not_run():
    detectors = engine(LabelDetector, GreedyDetector, text="detectors: {greedy: {enabled: false}}")
    assert [a.name for a in detectors] == ["alpha"]
    result = discover([make_service("x")], detectors)
    assert result.discovered == [] and result.skip_counts["no_match"] == 1


def test_results_are_sorted_and_deduplicated_last_wins():
    services = [
        make_service("b", "ns2", labels={"app": "alpha"}),
        make_service("a", "ns2", labels={"app": "alpha"}),
        make_service("z", "ns1", labels={"app": "alpha"}),
        make_service("a", "ns2", labels={"app": "alpha"}, ports=[(8080, "web")]),
    ]
    result = discover(services, engine(LabelDetector))
    assert [d.key for d in result.discovered] == ["ns1/z", "ns2/a", "ns2/b"]
    assert result.discovered[1].endpoint == "http://a.ns2.svc.cluster.local:8080"
    assert result.services_seen == 3


def test_discovered_carries_endpoint_health_path_and_toolsets():
    detectors = engine(
        LabelDetector,
        text="cluster_domain: corp.example\ndetectors: {alpha: {health_check: {path: /ready}}}",
    )
    [found] = discover(
        [make_service("svc", "obs", labels={"app": "alpha"}, ports=[(443, "https")])], detectors
    ).discovered
    assert found.endpoint == "https://svc.obs.svc.corp.example:443"
    assert found.health_path == "/ready"
    assert [t.kind for t in found.toolsets] == ["http"]
    default = discover(
        [make_service("svc", labels={"app": "alpha"})], engine(LabelDetector)
    ).discovered[0]
    assert default.health_path == "/healthz"


def test_namespace_and_annotation_filters_explain_skips():
    detectors = engine(
        LabelDetector,
        text="detectors:\n  alpha:\n    namespaces: ['!kube-*']\n"
        "    required_annotations: ['team=obs | team=sre']\n",
    )
    services = [
        make_service("a", "kube-system", labels={"app": "alpha"}, annotations={"team": "obs"}),
        make_service("b", "default", labels={"app": "alpha"}),
        make_service("c", "default", labels={"app": "alpha"}, annotations={"team": "sre"}),
        make_service("d", "kube-system", labels={"app": "nginx"}),
    ]
    result = discover(services, detectors)
    assert [d.key for d in result.discovered] == ["default/c"]
    assert dict(result.skip_counts) == {
        "no_match": 1,
        "namespace_filtered": 1,
        "annotation_filtered": 1,
        "invalid": 0,
    }
    assert [(s.service, s.reason, s.detector) for s in result.skips] == [
        ("default/b", "annotation_filtered", "alpha"),
        ("kube-system/a", "namespace_filtered", "alpha"),
    ]


def test_a_filtered_detector_lets_the_next_one_match():
    detectors = engine(
        LabelDetector, GreedyDetector, text="detectors: {alpha: {namespaces: [monitoring]}}"
    )
    [found] = discover(
        [make_service("a", "default", labels={"app": "alpha"})], detectors
    ).discovered
    assert found.detector == "greedy"


def test_a_raising_detector_is_isolated_counted_and_logged(caplog):
    caplog.set_level(logging.ERROR)
    detectors = engine(BrokenDetector, LabelDetector)
    result = discover([make_service("a", labels={"app": "alpha"}), make_service("b")], detectors)
    assert [d.key for d in result.discovered] == ["default/a"]
    assert result.detectors["broken"].errors == 2
    assert [(f.detector, f.service, f.error) for f in result.failures] == [
        ("broken", "default/a", "RuntimeError('boom')"),
        ("broken", "default/b", "RuntimeError('boom')"),
    ]
    assert "detector broken failed on Service default/a: RuntimeError('boom')" in caplog.text


def test_invalid_service_is_skipped_with_its_reason(caplog):
    caplog.set_level(logging.DEBUG)
    detectors = engine(PickyDetector, GreedyDetector)
    result = discover([make_service("p", labels={"app": "picky", "mode": "loose"})], detectors)
    assert result.discovered == []  # invalid stops the Service: no later detector takes it
    assert result.skip_counts["invalid"] == 1
    assert result.skips[0].detail == "label mode must be 'strict'"
    # Callers report skips (they repeat every cycle); discovery only says so at debug.
    (record,) = [r for r in caplog.records if "skipping Service" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == (
        "skipping Service default/p (invalid, detector picky): label mode must be 'strict'"
    )
    loose = engine(PickyDetector, text="detectors: {picky: {config: {mode: loose}}}")
    assert (
        len(
            discover(
                [make_service("p", labels={"app": "picky", "mode": "loose"})], loose
            ).discovered
        )
        == 1
    )


def test_per_detector_statistics(monkeypatch):
    # A clock only the detectors move: alpha costs 1 "second" per Service it
    # looks at, beta 10. Each detector must be charged exactly its own calls.
    clock = types.SimpleNamespace(now=0.0)
    monkeypatch.setattr(
        "dyntoolset.discovery.time", types.SimpleNamespace(perf_counter=lambda: clock.now)
    )

    class CostlyAlpha(LabelDetector):
        def detect(self, service, ctx):
            clock.now += 1.0
            return super().detect(service, ctx)

    class CostlyBeta(BetaDetector):
        def detect(self, service, ctx):
            clock.now += 10.0
            return super().detect(service, ctx)

    services = [make_service(f"s{i}", labels={"app": "beta"}) for i in range(3)] + [
        make_service("x"),
        make_service("a", labels={"app": "alpha"}),
    ]
    result = discover(services, engine(CostlyAlpha, CostlyBeta))
    assert result.detectors["alpha"].found == 1
    assert result.detectors["beta"].found == 3
    assert result.detectors["alpha"].seconds == 5.0  # all five Services
    assert result.detectors["beta"].seconds == 40.0  # the four alpha did not take
    assert result.seconds == 45.0
    assert result.by_namespace() == {"default": 4}


def test_services_without_ports_are_never_toolsets():
    assert (
        discover(
            [make_service("a", labels={"app": "alpha"}, ports=())], engine(LabelDetector)
        ).discovered
        == []
    )


@pytest.mark.parametrize("count", [0, 1, 500])
def test_engine_handles_any_number_of_services(count):
    services = [make_service(f"s{i}", f"ns{i % 7}", labels={"app": "alpha"}) for i in range(count)]
    result = discover(services, engine(LabelDetector))
    assert len(result.discovered) == count
    assert result.discovered == sorted(
        result.discovered, key=lambda d: (d.service.namespace, d.service.name)
    )


def test_a_detector_failing_everywhere_logs_once_with_its_traceback_then_a_count(caplog):
    # One ERROR line per Service meant tens of thousands of lines per cycle
    # for one broken plugin, none of them with a traceback to debug it.
    caplog.set_level(logging.DEBUG, logger="dyntoolset.discovery")
    services = [make_service(f"s{i:04}") for i in range(1000)]
    result = discover(services, engine(BrokenDetector))
    assert result.detectors["broken"].errors == 1000 and len(result.failures) == 1000
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "detector broken failed on Service default/s0000: RuntimeError('boom')",
        "detector broken failed on 1000 Services in this run (the first is logged above "
        "with its traceback; the others at debug level)",
    ]
    assert errors[0].exc_info is not None
    debug = [
        r for r in caplog.records if r.levelno == logging.DEBUG and "failed on" in r.getMessage()
    ]
    assert len(debug) == 999


class _ToolsetsRaise(LabelDetector):
    name = "toolsets-raise"
    default_priority = 1

    def detect(self, service, ctx):
        port = service.ports[0]
        return self.discovered(service, port, ctx)

    def toolsets(self, found, settings):
        raise KeyError("no such toolset")


def test_a_detector_whose_toolsets_raise_is_isolated_and_counted():
    detectors = engine(_ToolsetsRaise, LabelDetector)
    result = discover([make_service("a", labels={"app": "alpha"}), make_service("b")], detectors)
    # Its match is discarded (no half-built service), the next detector still runs.
    assert [(d.key, d.detector) for d in result.discovered] == [("default/a", "alpha")]
    assert result.detectors["toolsets-raise"].errors == 2
    assert result.detectors["toolsets-raise"].found == 0
    assert [(f.detector, f.service, f.error) for f in result.failures] == [
        ("toolsets-raise", "default/a", "KeyError('no such toolset')"),
        ("toolsets-raise", "default/b", "KeyError('no such toolset')"),
    ]
    assert dict(result.skip_counts)["no_match"] == 1
