"""The built-in detectors' prefilters keep their promise and leave unrelated Services out.

A prefilter that misses a Service its detector takes would silently hide a
backend: discovery never calls the detector for it. Every realistic Service
the repository holds (the chart fixtures and the example cluster), and each
of its one-step reductions, is checked against it.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from dyntoolset.manifests import read_manifests
from dyntoolset.model import Service
from dyntoolset.pipeline import Engine
from dyntoolset.snapshot import service_from_object
from dyntoolset.testing import make_engine, make_plugin_set, make_service, prefilter_problems

from ._support import DETECTORS, fixture_documents

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster"


def _samples() -> list[Service]:
    services = [service_from_object(doc) for _, doc in fixture_documents()]
    report = read_manifests([str(EXAMPLE)])
    services += [service_from_object(o.obj) for o in report.objects if o.kind == "Service"]
    return services


SAMPLES = _samples()


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_the_prefilter_admits_every_sample_the_detector_takes(detector) -> None:
    cls = type(detector)
    assert cls.prefilter is not None, f"{cls.name} declares no prefilter"
    assert prefilter_problems(cls, SAMPLES) == []


def _unprefiltered(engine: Engine) -> Engine:
    plugins = make_plugin_set(builtin_detectors=False)
    for detector in DETECTORS:
        plugins.add_detector(
            type(f"Plain{type(detector).__name__}", (type(detector),), {"prefilter": None}),
            plugin="test",
        )
    return make_engine(plugins)


def test_discovery_with_prefilters_equals_discovery_calling_every_detector() -> None:
    plugins = make_plugin_set()
    with_prefilters = make_engine(plugins)
    without = _unprefiltered(with_prefilters)
    # The samples and Services made to be near misses: relabelled copies.
    services = SAMPLES + [
        attrs.evolve(s, name=f"{s.name}-x{i}", labels={**s.labels, "app": "prometheus"})
        for i, s in enumerate(SAMPLES)
    ]
    ours, reference = with_prefilters.discover(services), without.discover(services)

    def outcome(result):
        return (
            [(d.key, d.detector, d.endpoint, d.toolsets) for d in result.discovered],
            result.skip_counts,
            result.skips,
        )

    assert outcome(ours) == outcome(reference)
    assert len(ours.discovered) > 20  # the samples hold that many backends


@pytest.mark.parametrize(
    "labels",
    [
        {
            "app.kubernetes.io/name": "redis",
            "app.kubernetes.io/instance": "cache",
            "app.kubernetes.io/component": "master",
            "app.kubernetes.io/managed-by": "Helm",
            "helm.sh/chart": "redis-18.1.0",
        },
        {
            "app.kubernetes.io/name": "prometheus-node-exporter",
            "app.kubernetes.io/component": "metrics",
            "helm.sh/chart": "prometheus-node-exporter-4.24.0",
        },
        {"app": "grafana-agent", "chart": "grafana-agent-0.37.0"},
    ],
    ids=["redis", "node-exporter", "grafana-agent"],
)
def test_an_unrelated_helm_service_is_admitted_by_no_builtin(labels) -> None:
    service = make_service("svc", labels=labels, ports=[(9100, "metrics")])
    admitted = [d.name for d in DETECTORS if type(d).prefilter.admits(service)]
    assert admitted == []
