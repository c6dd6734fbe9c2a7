"""Engine.cycle: the one pipeline, in order, reported in one Cycle."""

from __future__ import annotations

import attrs
import pytest

from dyntoolset import Engine
from dyntoolset.config import load_config
from dyntoolset.configmap import OVERRIDES_KEY
from dyntoolset.errors import DyntoolsetError, UnknownFormatError
from dyntoolset.model import HealthStatus
from dyntoolset.pipeline import service_verdicts
from dyntoolset.testing import make_plugin_set, make_service
from tests.helpers import LabelDetector, ListRenderer

T0 = "2026-01-01T00:00:00Z"
ALPHA = make_service("a", labels={"app": "alpha"})
BETA = make_service("b", labels={"app": "alpha"})
OTHER = make_service("c", labels={"app": "unrelated"})


def engine(config: str = "") -> Engine:
    plugins = make_plugin_set(
        LabelDetector, renderers=[ListRenderer], builtin_detectors=False, builtin_renderers=False
    )
    return (
        Engine(load_config(None, plugins), plugins) if not config else Engine.load(config, plugins)
    )


class MarkUnhealthy:
    """A health checker (the protocol Engine.cycle takes) failing the Services named."""

    def __init__(self, *failing: str) -> None:
        self.failing = failing
        self.rounds = 0

    def check(self, discovered):
        self.rounds += 1
        return [
            attrs.evolve(d, health=HealthStatus(d.service.name not in self.failing, "x", 0.0))
            for d in discovered
        ]


def test_a_cycle_reports_every_step():
    cycle = engine().cycle([OTHER, BETA, ALPHA], now=T0)
    assert [d.key for d in cycle.discovery.discovered] == ["default/a", "default/b"]
    assert cycle.discovery.skip_counts["no_match"] == 1
    assert cycle.checked == cycle.emitted == tuple(cycle.discovery.discovered)
    assert cycle.formats == ("lines",)
    assert cycle.documents == {
        "lines.txt": "default/a alpha http://a.default.svc.cluster.local:80\n"
        "default/b alpha http://b.default.svc.cluster.local:80\n"
    }
    assert cycle.merge is not None and cycle.merge.created
    assert cycle.merge.configmap["data"] == dict(cycle.documents)


def test_health_results_decide_what_is_emitted_but_all_are_reported():
    checker = MarkUnhealthy("b")
    cycle = engine().cycle([ALPHA, BETA], health=checker, now=T0)
    assert checker.rounds == 1
    assert [(d.key, d.health.healthy) for d in cycle.checked] == [
        ("default/a", True),
        ("default/b", False),
    ]
    assert [d.key for d in cycle.emitted] == ["default/a"]
    assert "default/b" not in cycle.documents["lines.txt"]


def test_include_unhealthy_emits_failed_services(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("health_checks: {include_unhealthy: true}\n")
    cycle = engine(str(config)).cycle([ALPHA, BETA], health=MarkUnhealthy("b"), now=T0)
    assert [d.key for d in cycle.emitted] == ["default/a", "default/b"]


def test_service_verdicts_follow_what_the_cycle_emitted(tmp_path):
    filtered = make_service("f", "kube-system", labels={"app": "alpha"})
    config = tmp_path / "c.yaml"
    config.write_text("detectors: {alpha: {namespaces: ['!kube-*']}}\n")
    cycle = engine(str(config)).cycle(
        [OTHER, BETA, ALPHA, filtered], health=MarkUnhealthy("b"), now=T0
    )
    verdicts = service_verdicts(cycle)
    # Sorted by namespace/name; OTHER, which no detector recognised, is not there.
    assert [(v.key, v.detector, v.verdict) for v in verdicts] == [
        ("default/a", "alpha", "emitted"),
        ("default/b", "alpha", "unhealthy"),
        ("kube-system/f", "alpha", "namespace_filtered"),
    ]
    emitted, unhealthy, skipped = verdicts
    assert emitted.discovered == cycle.emitted[0] and emitted.detail == ""
    assert unhealthy.discovered is not None and unhealthy.detail == "x"
    assert skipped.discovered is None
    assert skipped.detail == cycle.discovery.skips[0].detail


def test_with_include_unhealthy_a_failed_service_is_an_emitted_verdict(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("health_checks: {include_unhealthy: true}\n")
    cycle = engine(str(config)).cycle([ALPHA, BETA], health=MarkUnhealthy("b"), now=T0)
    verdicts = service_verdicts(cycle)
    assert [(v.key, v.verdict) for v in verdicts] == [
        ("default/a", "emitted"),
        ("default/b", "emitted"),
    ]
    # The failed check is still there to see.
    failed = verdicts[1].discovered
    assert failed is not None and failed.health is not None and not failed.health.healthy


def test_configmap_false_stops_after_the_documents():
    cycle = engine().cycle([ALPHA], configmap=False)
    assert cycle.merge is None
    assert list(cycle.documents) == ["lines.txt"]


def test_an_unknown_format_names_the_installed_ones():
    with pytest.raises(UnknownFormatError) as info:
        engine().cycle([ALPHA], formats=["yaml"])
    assert isinstance(info.value, DyntoolsetError)
    assert str(info.value) == "unknown output format 'yaml'; installed: lines"


def test_remerge_reuses_discovery_and_reads_overrides_again():
    eng = engine()
    checker = MarkUnhealthy()
    first = eng.cycle([ALPHA], health=checker, now=T0)
    assert first.merge is not None
    # Someone changed the ConfigMap between our read and our write.
    newer = dict(first.merge.configmap)
    newer["data"] = {**newer["data"], "foreign": "kept", OVERRIDES_KEY: "not: [valid"}
    again = eng.remerge(first, newer, now=T0)
    assert checker.rounds == 1  # no second health round
    assert again.discovery is first.discovery
    assert again.merge is not None and again.merge.configmap["data"]["foreign"] == "kept"
    assert again.merge.configmap["data"][OVERRIDES_KEY] == "not: [valid"
    assert len(again.problems) == 1 and again.problems[0].startswith(f"{OVERRIDES_KEY}: ")
