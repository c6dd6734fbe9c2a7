"""Tests of the dyntoolset-tempo plugin, written only against dyntoolset's public API.

``fixtures/*.yaml`` hold the Services the charts and the operator create,
each with an ``expect:`` block: what the detector must return, or ``none:``
(a near miss no detector may take, the built-ins included).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from dyntoolset_tempo import TempoDetector

from dyntoolset import Engine, service_from_object
from dyntoolset.plugin import Port, Service
from dyntoolset.testing import (
    check_detector,
    check_entry_point,
    discover_fixture,
    fixture_documents,
    helm_service,
    make_plugin_set,
    make_service,
    run_detector,
)

FIXTURES = Path(__file__).parent / "fixtures"


CASES = fixture_documents(FIXTURES)
SERVICES = [service_from_object(doc) for _, doc in CASES]
ENGINE = Engine.load(None, plugins=make_plugin_set(TempoDetector))


@pytest.mark.parametrize("doc", [d for _, d in CASES], ids=[i for i, _ in CASES])
def test_chart_and_operator_services(doc: dict[str, Any]) -> None:
    # The engine runs the built-ins too: a near miss must be left alone by
    # every detector, and a Tempo Service must reach the tempo detector.
    found = discover_fixture(ENGINE, doc)
    if found is None:
        return
    expect = doc["expect"]
    assert found.detector == "tempo"
    assert found.type == "tempo"
    assert found.health_path == expect["health"]
    assert found.metadata == {"component": expect["component"]}
    (spec,) = found.toolsets
    assert spec.kind == "grafana/tempo"
    assert spec.config == {"api_url": expect["endpoint"]}


def test_fixtures_hold_every_source_a_renamed_release_and_near_misses() -> None:
    # Guards the fixture set: the tests above are only as good as it is.
    expected = [doc["expect"] for _, doc in CASES]
    components = {e["component"] for e in expected if "detector" in e}
    assert components == {"single-binary", "query-frontend", "monolithic"}
    assert {path.stem for path in FIXTURES.glob("*.yaml")} == {
        "grafana-tempo",
        "tempo-distributed",
        "tempo-operator",
    }
    renamed = [
        doc
        for _, doc in CASES
        if "detector" in doc["expect"]
        and doc["metadata"]["labels"]["app.kubernetes.io/name"] not in ("tempo", "tempo-monolithic")
    ]
    assert len(renamed) == 2
    assert sum(1 for e in expected if "none" in e) >= 15


def test_honours_the_detector_contract() -> None:
    # A Service named by the legacy "app" label only is matched too: it keeps
    # the prefilter's "app" condition honest.
    legacy = make_service("tempo", "tracing", labels={"app": "tempo"}, ports=[(3200, "http")])
    assert run_detector(TempoDetector, legacy) is not None
    check_detector(TempoDetector, [*SERVICES, legacy])


# -- the prefilter: discovery calls detect() only for the Services it admits -------------


UNRELATED = [
    helm_service("redis", "19.6.4", "master", (6379, "tcp-redis")),
    helm_service("postgresql", "15.5.20", "primary", (5432, "tcp-postgresql")),
    # Tempo's own port names are everyday ones: they must not let a Service in.
    helm_service("nginx", "18.1.7", "server", (80, "http")),
    helm_service("app-template", "3.3.2", "worker", (3200, "http-metrics")),
    # A chart whose name only starts with "tempo-".
    helm_service("tempo-vulture", "0.10.1", "vulture", (3200, "http-metrics")),
]


@pytest.mark.parametrize("service", UNRELATED, ids=[s.name for s in UNRELATED])
def test_the_prefilter_keeps_unrelated_helm_services_out(service: Service) -> None:
    assert TempoDetector.prefilter is not None
    assert not TempoDetector.prefilter.admits(service)


def test_the_prefilter_admits_every_service_the_detector_matches() -> None:
    matched = [s for s in SERVICES if run_detector(TempoDetector, s) is not None]
    assert len(matched) == 6  # every source, and the renamed releases
    assert TempoDetector.prefilter is not None
    assert all(TempoDetector.prefilter.admits(s) for s in matched)


def _query_frontend(**changes: Any) -> Service:
    values: dict[str, Any] = {
        "labels": {
            "app.kubernetes.io/name": "tempo",
            "app.kubernetes.io/component": "query-frontend",
        },
        "ports": [(3200, "http-metrics"), (9095, "grpc")],
    }
    values.update(changes)
    return make_service("tempo-query-frontend", "tracing", **values)


def test_the_query_frontend_sample_is_found() -> None:
    # The positive control of the near misses built from it below.
    assert run_detector(TempoDetector, _query_frontend()) is not None


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"service_type": "ExternalName", "cluster_ip": ""}, "ExternalName"),
        ({"cluster_ip": "None"}, "headless"),
        ({"ports": [(9095, "grpc"), (4317, "otlp-grpc")]}, "no HTTP port: never the first port"),
        ({"ports": [(3200, "http-metrics", "")], "labels": {}}, "no Tempo labels"),
        (
            {"labels": {"app.kubernetes.io/name": "tempo", "app.kubernetes.io/component": "x"}},
            "unknown component",
        ),
        (
            {"labels": {"helm.sh/chart": "tempo-vulture-0.10.1"}},
            "another chart whose name starts with tempo-",
        ),
    ],
)
def test_near_misses_built_from_the_query_frontend(changes: dict[str, Any], why: str) -> None:
    assert run_detector(TempoDetector, _query_frontend(**changes)) is None, why


def test_a_udp_port_named_like_the_query_port_is_not_taken() -> None:
    udp = _query_frontend(ports=[Port(port=3200, name="http-metrics", protocol="UDP")])
    assert run_detector(TempoDetector, udp) is None


def test_https_port_and_configured_health_path_and_domain() -> None:
    tls = _query_frontend(ports=[(3200, "https")])
    found = run_detector(TempoDetector, tls, cluster_domain="k8s.example", health_path="/status")
    # "https" is not one of Tempo's port names, but 3200 is its port number.
    assert found is not None
    assert found.endpoint == "https://tempo-query-frontend.tracing.svc.k8s.example:3200"
    assert found.health_path == "/status"


def test_engine_writes_one_grafana_tempo_toolset_with_an_instance_per_installation() -> None:
    cycle = ENGINE.cycle(SERVICES, formats=["holmesgpt"], configmap=False)
    tempo = [d.key for d in cycle.discovery.discovered if d.detector == "tempo"]
    assert tempo == [
        "observability/obs-traces",
        "observability/tempo-sample",
        "observability/tempo-simplest-query-frontend",
        "prod/tracing-prod-traces-query-frontend",
        "tracing/tempo",
        "tracing/tempo-query-frontend",
    ]
    # Nothing else in the fixtures is taken by any detector.
    assert len(cycle.discovery.discovered) == len(tempo)
    document = yaml.safe_load(cycle.documents["custom_toolset.yaml"])
    toolset = document["toolsets"]["grafana/tempo"]
    assert toolset["enabled"] is True
    assert {i["name"]: i["api_url"] for i in toolset["config"]["instances"]} == {
        "observability/obs-traces": "http://obs-traces.observability.svc.cluster.local:3200",
        "observability/tempo-sample": "http://tempo-sample.observability.svc.cluster.local:3200",
        "observability/tempo-simplest-query-frontend": (
            "http://tempo-simplest-query-frontend.observability.svc.cluster.local:3200"
        ),
        "prod/tracing-prod-traces-query-frontend": (
            "http://tracing-prod-traces-query-frontend.prod.svc.cluster.local:3100"
        ),
        "tracing/tempo": "http://tempo.tracing.svc.cluster.local:3200",
        "tracing/tempo-query-frontend": (
            "http://tempo-query-frontend.tracing.svc.cluster.local:3200"
        ),
    }


def test_a_service_annotated_for_the_custom_detector_stays_with_it() -> None:
    annotated = _query_frontend(
        annotations={"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": "tempo"}
    )
    (found,) = ENGINE.discover([annotated]).discovered
    assert found.detector == "custom"  # priority 5 runs before tempo's 21


def test_installed_distribution_registers_the_entry_point() -> None:
    check_entry_point("dyntoolset-tempo", TempoDetector)
