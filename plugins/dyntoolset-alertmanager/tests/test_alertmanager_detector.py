"""Tests of the dyntoolset-alertmanager plugin, written only against dyntoolset's public API.

``fixtures/*.yaml`` hold the Services the charts and operators create, each
with an ``expect:`` block: which detector takes it (this plugin, or a
built-in for a neighbour of the same release) and what it returns, or
``none:`` (a near miss no detector may take).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from dyntoolset_alertmanager import API_HINT, AlertmanagerDetector

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
ENGINE = Engine.load(None, plugins=make_plugin_set(AlertmanagerDetector))


@pytest.mark.parametrize("doc", [d for _, d in CASES], ids=[i for i, _ in CASES])
def test_chart_and_operator_services(doc: dict[str, Any]) -> None:
    found = discover_fixture(ENGINE, doc)
    if found is None:
        return
    expect = doc["expect"]
    if found.detector != "alertmanager":
        return
    assert found.type == "alertmanager"
    assert found.health_path == "/-/healthy"
    (spec,) = found.toolsets
    assert spec.kind == "http"
    host = expect["endpoint"]
    assert spec.config == {
        "endpoints": [{"hosts": [host], "paths": ["/api/v2/*"], "methods": ["GET"]}]
    }
    assert spec.llm_instructions.endswith(API_HINT)
    meta = doc["metadata"]
    assert spec.description == (
        f"Prometheus Alertmanager {meta['name']} in namespace {meta['namespace']}"
    )
    assert f"Base URL: {host}" in spec.llm_instructions


def test_fixtures_hold_every_source_renamed_releases_and_near_misses() -> None:
    found = {
        doc["metadata"]["name"]
        for _, doc in CASES
        if doc["expect"].get("detector") == "alertmanager"
    }
    assert found == {
        "kube-prometheus-stack-alertmanager",
        "obs-kps-alertmanager",  # nameOverride, port named web
        "alertmanager",
        "ops-am",  # nameOverride, port 80
        "prometheus-alertmanager",
        "alertmanager-main",
        "vmalertmanager-vmks-victoria-metrics-k8s-stack",
    }
    assert sum(1 for _, doc in CASES if "none" in doc["expect"]) >= 8


def test_honours_the_detector_contract() -> None:
    check_detector(AlertmanagerDetector, SERVICES)


# -- the prefilter: discovery calls detect() only for the Services it admits -------------


UNRELATED = [
    helm_service("redis", "19.6.4", "master", (6379, "tcp-redis")),
    helm_service("postgresql", "15.5.20", "primary", (5432, "tcp-postgresql")),
    # Alertmanager's port names are everyday ones: they must not let a Service in.
    helm_service("nginx", "18.1.7", "server", (80, "http")),
    helm_service("app-template", "3.3.2", "web", (9093, "web")),
    # kube-prometheus-stack's Prometheus: the same chart labels, another app.
    make_service(
        "kube-prometheus-stack-prometheus",
        "monitoring",
        labels={
            "app": "kube-prometheus-stack-prometheus",
            "app.kubernetes.io/part-of": "kube-prometheus-stack",
            "chart": "kube-prometheus-stack-65.1.1",
            "release": "kube-prometheus-stack",
        },
        ports=[(9090, "http-web")],
    ),
]


@pytest.mark.parametrize("service", UNRELATED, ids=[s.name for s in UNRELATED])
def test_the_prefilter_keeps_unrelated_services_out(service: Service) -> None:
    assert AlertmanagerDetector.prefilter is not None
    assert not AlertmanagerDetector.prefilter.admits(service)


def test_the_prefilter_admits_every_service_the_detector_matches() -> None:
    matched = [s for s in SERVICES if run_detector(AlertmanagerDetector, s) is not None]
    assert len(matched) == 7  # every source, and the renamed releases
    assert AlertmanagerDetector.prefilter is not None
    assert all(AlertmanagerDetector.prefilter.admits(s) for s in matched)


def _chart_service(name: str = "alertmanager", **changes: Any) -> Service:
    values: dict[str, Any] = {
        "labels": {"app.kubernetes.io/name": "alertmanager"},
        "ports": [(9093, "http")],
    }
    values.update(changes)
    return make_service(name, "monitoring", **values)


def test_the_chart_sample_is_found() -> None:
    # The positive control of the near misses built from it below.
    assert run_detector(AlertmanagerDetector, _chart_service()) is not None


@pytest.mark.parametrize(
    ("name", "changes", "why"),
    [
        ("alertmanager", {"service_type": "ExternalName", "cluster_ip": ""}, "ExternalName"),
        ("alertmanager", {"cluster_ip": "None"}, "headless, not the VM operator's"),
        ("alertmanager-headless", {}, "headless by name"),
        ("alertmanager-operated", {}, "governing Service by name"),
        (
            "alertmanager",
            {"labels": {"app.kubernetes.io/name": "alertmanager", "operated-alertmanager": "true"}},
            "operated-alertmanager label",
        ),
        ("alertmanager-2", {}, "per replica"),
        ("alertmanager", {"ports": [(9094, "tcp-mesh"), (8080, "reloader-web")]}, "no API port"),
        ("alertmanager", {"ports": [Port(9093, "http", "UDP")]}, "UDP"),
        (
            "am-alertmanager",
            {"labels": {"app": "am-alertmanager", "app.kubernetes.io/part-of": "other"}},
            "app label not <part-of>-alertmanager",
        ),
    ],
)
def test_near_misses_built_from_the_chart_service(
    name: str, changes: dict[str, Any], why: str
) -> None:
    assert run_detector(AlertmanagerDetector, _chart_service(name, **changes)) is None, why


def test_configured_health_path_and_domain_and_https() -> None:
    svc = _chart_service(ports=[(9094, "web", "https")])
    found = run_detector(
        AlertmanagerDetector, svc, cluster_domain="k8s.example", health_path="/-/ready"
    )
    assert found is not None
    assert found.endpoint == "https://alertmanager.monitoring.svc.k8s.example:9094"
    assert found.health_path == "/-/ready"


def test_engine_writes_one_http_toolset_per_alertmanager() -> None:
    cycle = ENGINE.cycle(SERVICES, formats=["holmesgpt"], configmap=False)
    taken = {d.key: d.detector for d in cycle.discovery.discovered}
    assert taken == {
        "monitoring/kube-prometheus-stack-alertmanager": "alertmanager",
        "observability/obs-kps-alertmanager": "alertmanager",
        "observability/obs-kps-prometheus": "prometheus",
        "monitoring/alertmanager": "alertmanager",
        "ops/ops-am": "alertmanager",
        "monitoring/prometheus-alertmanager": "alertmanager",
        "monitoring/alertmanager-main": "alertmanager",
        "vm/vmalertmanager-vmks-victoria-metrics-k8s-stack": "alertmanager",
    }
    toolsets = yaml.safe_load(cycle.documents["custom_toolset.yaml"])["toolsets"]
    ours = [t for name, t in toolsets.items() if name.startswith("alertmanager/")]
    # One toolset per Alertmanager (long names are shortened with a hash), each
    # limited to its own host and to the API v2.
    hosts = sorted(h for t in ours for e in t["config"]["endpoints"] for h in e["hosts"])
    assert hosts == sorted(
        d.endpoint for d in cycle.discovery.discovered if d.detector == "alertmanager"
    )
    assert len(hosts) == 7
    for toolset in ours:
        assert toolset["type"] == "http"
        (endpoint,) = toolset["config"]["endpoints"]
        assert endpoint["paths"] == ["/api/v2/*"] and endpoint["methods"] == ["GET"]


def test_a_service_annotated_for_the_custom_detector_stays_with_it() -> None:
    annotated = _chart_service(
        annotations={"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": "am"}
    )
    (found,) = ENGINE.discover([annotated]).discovered
    assert found.detector == "custom"


def test_installed_distribution_registers_the_entry_point() -> None:
    check_entry_point("dyntoolset-alertmanager", AlertmanagerDetector)
