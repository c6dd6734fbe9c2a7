"""Tests of the dyntoolset-mimir plugin, written only against dyntoolset's public API.

``fixtures/mimir-distributed.yaml`` holds the Services of the chart, each with
an ``expect:`` block: what the detector returns by default (or ``none:``, a
near miss no detector may take), and under ``gateway:`` what it returns with
``prefer: gateway``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from dyntoolset_mimir import MimirDetector

from dyntoolset import ConfigError, service_from_object
from dyntoolset.plugin import Port, Service
from dyntoolset.testing import (
    check_detector,
    check_entry_point,
    discover_fixture,
    fixture_documents,
    helm_service,
    make_engine,
    make_plugin_set,
    make_service,
    run_detector,
)

FIXTURES = Path(__file__).parent / "fixtures"


CASES = fixture_documents(FIXTURES)
SERVICES = [service_from_object(doc) for _, doc in CASES]
PLUGINS = make_plugin_set(MimirDetector)


DIRECT = make_engine(PLUGINS)
GATEWAY = make_engine(PLUGINS, "detectors:\n  mimir:\n    config:\n      prefer: gateway\n")


def _check(found: Any, expect: dict[str, Any]) -> None:
    assert found.detector == "mimir"
    assert found.type == "mimir"
    assert found.endpoint == expect["endpoint"]
    assert found.port is not None and found.port.port == expect["port"]
    assert found.health_path == expect["health"]
    assert found.metadata == {"component": expect["component"], "api_prefix": "/prometheus"}
    (spec,) = found.toolsets
    assert spec.kind == "prometheus/metrics"
    assert spec.config == {"prometheus_url": expect["endpoint"] + "/prometheus"}


@pytest.mark.parametrize("doc", [d for _, d in CASES], ids=[i for i, _ in CASES])
def test_chart_services_by_default(doc: dict[str, Any]) -> None:
    # The engine runs the built-ins too: a near miss is left alone by all.
    found = discover_fixture(DIRECT, doc)
    if found is None:
        return
    expect = doc["expect"]
    _check(found, expect)


@pytest.mark.parametrize("doc", [d for _, d in CASES], ids=[i for i, _ in CASES])
def test_chart_services_with_prefer_gateway(doc: dict[str, Any]) -> None:
    result = GATEWAY.discover([service_from_object(doc)])
    expect = doc["expect"].get("gateway")
    if expect is None:
        assert result.discovered == []
        return
    (found,) = result.discovered
    _check(found, expect)


def test_fixtures_hold_a_renamed_release_and_near_misses() -> None:
    expected = [doc["expect"] for _, doc in CASES]
    assert sum(1 for e in expected if "detector" in e) == 2
    assert sum(1 for e in expected if "gateway" in e) == 2
    assert sum(1 for e in expected if "none" in e) >= 18
    names = {doc["metadata"]["labels"]["app.kubernetes.io/name"] for _, doc in CASES}
    assert names == {"mimir", "lt-metrics", "enterprise-metrics"}


def test_honours_the_detector_contract() -> None:
    check_detector(MimirDetector, SERVICES)


# -- the prefilter: discovery calls detect() only for the Services it admits -------------


UNRELATED = [
    helm_service("redis", "19.6.4", "master", (6379, "tcp-redis")),
    helm_service("postgresql", "15.5.20", "primary", (5432, "tcp-postgresql")),
    # Mimir's port name and component are everyday ones: they must not let a Service in.
    helm_service("app-template", "3.3.2", "query-frontend", (8080, "http-metrics")),
    helm_service("nginx", "18.1.7", "gateway", (80, "http")),
    # Another chart of the Mimir family.
    helm_service("mimir-operations", "0.1.0", "dashboards", (80, "http")),
]


@pytest.mark.parametrize("service", UNRELATED, ids=[s.name for s in UNRELATED])
def test_the_prefilter_keeps_unrelated_helm_services_out(service: Service) -> None:
    assert MimirDetector.prefilter is not None
    assert not MimirDetector.prefilter.admits(service)


@pytest.mark.parametrize("prefer", ["direct", "gateway"])
def test_the_prefilter_admits_every_service_the_detector_matches(prefer: str) -> None:
    # check_detector runs the default settings only: the gateway matches too.
    matched = [s for s in SERVICES if run_detector(MimirDetector, s, {"prefer": prefer})]
    assert len(matched) == 2  # the release and the renamed one
    assert MimirDetector.prefilter is not None
    assert all(MimirDetector.prefilter.admits(s) for s in matched)


def _query_frontend(**changes: Any) -> Service:
    values: dict[str, Any] = {
        "labels": {
            "app.kubernetes.io/name": "mimir",
            "app.kubernetes.io/component": "query-frontend",
        },
        "ports": [(8080, "http-metrics"), (9095, "grpc")],
    }
    values.update(changes)
    return make_service("mimir-query-frontend", "mimir", **values)


def test_the_query_frontend_sample_is_found() -> None:
    assert run_detector(MimirDetector, _query_frontend()) is not None


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"service_type": "ExternalName", "cluster_ip": ""}, "ExternalName"),
        ({"cluster_ip": "None"}, "headless"),
        ({"ports": [(9095, "grpc")]}, "no HTTP port: never the first port"),
        ({"ports": [Port(8080, "http-metrics", "UDP")]}, "UDP"),
        ({"labels": {"app.kubernetes.io/component": "query-frontend"}}, "no Mimir labels"),
        (
            {
                "labels": {
                    "helm.sh/chart": "mimir-something-1.0",
                    "app.kubernetes.io/component": "query-frontend",
                }
            },
            "another chart",
        ),
    ],
)
def test_near_misses_built_from_the_query_frontend(changes: dict[str, Any], why: str) -> None:
    assert run_detector(MimirDetector, _query_frontend(**changes)) is None, why


def test_the_older_charts_nginx_service_is_the_gateway() -> None:
    # mimir-distributed before 4.0: "<fullname>-nginx", component nginx, port http-metric.
    nginx = make_service(
        "mimir-nginx",
        "mimir",
        labels={"app.kubernetes.io/name": "mimir", "app.kubernetes.io/component": "nginx"},
        ports=[(80, "http-metric")],
    )
    assert run_detector(MimirDetector, nginx) is None
    found = run_detector(MimirDetector, nginx, {"prefer": "gateway"})
    assert found is not None
    assert found.endpoint == "http://mimir-nginx.mimir.svc.cluster.local:80"
    assert found.toolsets[0].config["prometheus_url"] == (
        "http://mimir-nginx.mimir.svc.cluster.local:80/prometheus"
    )


def test_a_configured_health_path_wins_over_the_gateway_default() -> None:
    gateway = make_service(
        "mimir-gateway",
        "mimir",
        labels={"app.kubernetes.io/name": "mimir", "app.kubernetes.io/component": "gateway"},
        ports=[(80, "http-metrics")],
    )
    found = run_detector(MimirDetector, gateway, {"prefer": "gateway"}, health_path="/ready")
    assert found is not None and found.health_path == "/ready"


def test_the_tenant_becomes_the_x_scope_orgid_header() -> None:
    found = run_detector(MimirDetector, _query_frontend(), {"tenant": "team-a|team-b"})
    assert found is not None
    (spec,) = found.toolsets
    assert spec.config == {
        "prometheus_url": "http://mimir-query-frontend.mimir.svc.cluster.local:8080/prometheus",
        "additional_headers": {"X-Scope-OrgID": "team-a|team-b"},
    }
    # The tenant is a setting, not per-Service metadata (toolset.json publishes that).
    assert "tenant" not in found.metadata


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"prefer": "both"},
            "$.detectors.mimir.config.prefer: expected one of 'direct', 'gateway', got 'both'",
        ),
        ({"tenant": 7}, "$.detectors.mimir.config.tenant: expected str, got 7"),
        (
            {"tenant": "team a"},
            "$.detectors.mimir.config.tenant: 'team a' is not a Mimir tenant: use up to 150 "
            "letters, digits and ! - _ . * ' ( ), or several joined with '|'",
        ),
        (
            {"tenant": "x\r\nX-Evil: 1"},
            "$.detectors.mimir.config.tenant: 'x\\r\\nX-Evil: 1' is not a Mimir tenant: use up to "
            "150 letters, digits and ! - _ . * ' ( ), or several joined with '|'",
        ),
        ({"tenant": ".."}, None),
        ({"tenant": "a||b"}, None),
        ({"tenant": "t" * 151}, None),
        (
            {"tenant": "|".join(["t" * 100] * 11)},
            "$.detectors.mimir.config.tenant: is 1110 characters long; the limit is 1024",
        ),
        (
            {"tennant": "a"},
            "$.detectors.mimir.config.tennant: unknown key; expected one of: prefer, tenant",
        ),
    ],
)
def test_bad_settings_are_reported_as_users_see_them(
    config: dict[str, Any], message: str | None
) -> None:
    with pytest.raises(ConfigError) as info:
        run_detector(MimirDetector, _query_frontend(), config)
    (line,) = str(info.value).splitlines()[1:]
    if message is None:
        assert "is not a Mimir tenant" in line
    else:
        assert line == f"  {message}"


def test_engine_writes_prometheus_metrics_instances_next_to_prometheus() -> None:
    prometheus = make_service(
        "prometheus-server",
        "monitoring",
        labels={"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"},
        ports=[(80, "http")],
    )
    engine = make_engine(PLUGINS, "detectors:\n  mimir:\n    config:\n      tenant: anonymous\n")
    cycle = engine.cycle([*SERVICES, prometheus], formats=["holmesgpt"], configmap=False)
    assert {d.key: d.detector for d in cycle.discovery.discovered} == {
        "mimir/mimir-query-frontend": "mimir",
        "metrics/prod-lt-metrics-query-frontend": "mimir",
        "monitoring/prometheus-server": "prometheus",
    }
    document = yaml.safe_load(cycle.documents["custom_toolset.yaml"])
    instances = {
        i["name"]: i for i in document["toolsets"]["prometheus/metrics"]["config"]["instances"]
    }
    assert instances["mimir/mimir-query-frontend"] == {
        "name": "mimir/mimir-query-frontend",
        "prometheus_url": "http://mimir-query-frontend.mimir.svc.cluster.local:8080/prometheus",
        "additional_headers": {"X-Scope-OrgID": "anonymous"},
    }
    assert instances["monitoring/prometheus-server"]["prometheus_url"] == (
        "http://prometheus-server.monitoring.svc.cluster.local:80"
    )


def test_installed_distribution_registers_the_entry_point() -> None:
    check_entry_point("dyntoolset-mimir", MimirDetector)
