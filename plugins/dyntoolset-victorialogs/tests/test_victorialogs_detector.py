"""Tests of the dyntoolset-victorialogs plugin, written only against dyntoolset's public API.

``fixtures/*.yaml`` hold the Services the charts and the operator create,
each with an ``expect:`` block: which detector takes it (this plugin, or a
built-in for a neighbour) and what it returns, or ``none:`` (a near miss no
detector may take).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from dyntoolset_victorialogs import VictoriaLogsDetector

from dyntoolset import ConfigError, Engine, load_config_text, service_from_object
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
PLUGINS = make_plugin_set(VictoriaLogsDetector)
ENGINE = Engine.load(None, plugins=PLUGINS)


@pytest.mark.parametrize("doc", [d for _, d in CASES], ids=[i for i, _ in CASES])
def test_chart_and_operator_services(doc: dict[str, Any]) -> None:
    found = discover_fixture(ENGINE, doc)
    if found is None:
        return
    expect = doc["expect"]
    if found.detector != "victorialogs":
        return
    assert found.type == "victorialogs"
    assert found.health_check == "http"
    assert found.health_path == "/health"
    (spec,) = found.toolsets
    assert spec.kind == "victorialogs"
    assert spec.config == {"api_url": expect["endpoint"]}
    meta = doc["metadata"]
    assert (
        spec.description == f"Logs in VictoriaLogs {meta['name']} in namespace {meta['namespace']}"
    )
    assert "LogsQL" in spec.llm_instructions


def test_fixtures_hold_every_source_renamed_releases_and_near_misses() -> None:
    found = {
        doc["metadata"]["name"]
        for _, doc in CASES
        if doc["expect"].get("detector") == "victorialogs"
    }
    assert found == {
        "vls-victoria-logs-single-server",
        "logs-vlogs-single-server",  # nameOverride, syslog port first, port 80
        "vlc-victoria-logs-cluster-vlselect",
        "vlsingle-main",
        "vlogs-legacy",
        "vlselect-logs",
    }
    assert sum(1 for _, doc in CASES if "none" in doc["expect"]) >= 6


def test_honours_the_detector_contract() -> None:
    check_detector(VictoriaLogsDetector, SERVICES)


# -- the prefilter: discovery calls detect() only for the Services it admits -------------


UNRELATED = [
    helm_service("redis", "19.6.4", "master", (6379, "tcp-redis")),
    helm_service("postgresql", "15.5.20", "primary", (5432, "tcp-postgresql")),
    # VictoriaLogs' port name, and its "app" label values, on other charts.
    helm_service("nginx", "18.1.7", "server", (80, "http")),
    make_service("web", "shop", labels={"app": "server"}, ports=[(9428, "http")]),
    # VictoriaMetrics' own chart, from the same repository.
    helm_service("victoria-metrics-single", "0.12.1", "server", (8428, "http")),
]


@pytest.mark.parametrize("service", UNRELATED, ids=[s.name for s in UNRELATED])
def test_the_prefilter_keeps_unrelated_services_out(service: Service) -> None:
    assert VictoriaLogsDetector.prefilter is not None
    assert not VictoriaLogsDetector.prefilter.admits(service)


def test_the_prefilter_admits_every_service_the_detector_matches() -> None:
    matched = [s for s in SERVICES if run_detector(VictoriaLogsDetector, s) is not None]
    assert len(matched) == 6  # the charts' three, the operator's three
    assert VictoriaLogsDetector.prefilter is not None
    assert all(VictoriaLogsDetector.prefilter.admits(s) for s in matched)


def _chart_service(name: str = "vls-victoria-logs-single-server", **changes: Any) -> Service:
    values: dict[str, Any] = {
        "labels": {"app.kubernetes.io/name": "victoria-logs-single", "app": "server"},
        "ports": [(9428, "http")],
    }
    values.update(changes)
    return make_service(name, "logging", **values)


def test_the_chart_sample_is_found() -> None:
    # The positive control of the near misses built from it below.
    assert run_detector(VictoriaLogsDetector, _chart_service()) is not None


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"service_type": "ExternalName", "cluster_ip": ""}, "ExternalName"),
        ({"cluster_ip": "None"}, "headless"),
        ({"ports": [(514, "syslog-tcp")]}, "no HTTP port"),
        ({"ports": [Port(9428, "http", "UDP")]}, "UDP"),
        (
            {"labels": {"app.kubernetes.io/name": "victoria-logs-single", "app": "vector"}},
            "another component of the chart",
        ),
        (
            {"labels": {"app.kubernetes.io/name": "victoria-metrics-single", "app": "server"}},
            "VictoriaMetrics, not VictoriaLogs",
        ),
        (
            {
                "labels": {
                    "app.kubernetes.io/name": "other",
                    "helm.sh/chart": "victoria-logs-cluster-0.0.17",
                    "app": "vlinsert",
                }
            },
            "vlinsert under a nameOverride",
        ),
        ({"labels": {"app.kubernetes.io/name": "vlinsert"}}, "the operator's vlinsert"),
    ],
)
def test_near_misses_built_from_the_chart_service(changes: dict[str, Any], why: str) -> None:
    assert run_detector(VictoriaLogsDetector, _chart_service(**changes)) is None, why


def test_a_cluster_chart_with_name_override_is_found_by_its_chart_label() -> None:
    svc = _chart_service(
        "vlc-logs-vlselect",
        labels={
            "app.kubernetes.io/name": "logs",
            "helm.sh/chart": "victoria-logs-cluster-0.0.17",
            "app": "vlselect",
        },
        ports=[(9471, "http")],
    )
    found = run_detector(VictoriaLogsDetector, svc)
    assert found is not None
    assert found.endpoint == "http://vlc-logs-vlselect.logging.svc.cluster.local:9471"


def test_configured_health_path_domain_and_https() -> None:
    svc = _chart_service(ports=[(9428, "https")])
    found = run_detector(
        VictoriaLogsDetector, svc, cluster_domain="k8s.example", health_path="/ping"
    )
    assert found is not None
    assert found.endpoint == "https://vls-victoria-logs-single-server.logging.svc.k8s.example:9428"
    assert found.health_path == "/ping"


def _toolsets_with(config: str, services: list[Service] | None = None) -> dict[str, Any]:
    engine = Engine(load_config_text(config, "<test>", PLUGINS), PLUGINS)
    cycle = engine.cycle(services or [_chart_service()], formats=["holmesgpt"], configmap=False)
    toolsets: dict[str, Any] = yaml.safe_load(cycle.documents["custom_toolset.yaml"])["toolsets"]
    return toolsets


def test_basic_auth_from_the_environment_and_verify_ssl() -> None:
    toolsets = _toolsets_with(
        "detectors:\n  victorialogs:\n    config:\n"
        "      username: reader\n      password_env: VL_PASSWORD\n      verify_ssl: false\n"
    )
    assert toolsets["victorialogs"]["config"] == {
        "api_url": "http://vls-victoria-logs-single-server.logging.svc.cluster.local:9428",
        "username": "reader",
        "password": "{{ env.VL_PASSWORD }}",
        "verify_ssl": False,
    }


def test_bearer_token_from_the_environment() -> None:
    toolsets = _toolsets_with(
        "detectors:\n  victorialogs:\n    config:\n      token_env: VL_TOKEN\n"
    )
    config = toolsets["victorialogs"]["config"]
    assert config["bearer_token"] == "{{ env.VL_TOKEN }}"
    assert "password" not in config and "username" not in config


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ("api_key_env: VL_KEY", "api_key_env"),  # VictoriaLogsConfig has no API key
        ("ca_file: /etc/ssl/vl.pem", "ca_file"),  # nor a CA path
        ("password_env: VL_PASSWORD", "password_env"),  # no default user: needs one
    ],
)
def test_a_credential_the_toolset_cannot_carry_is_refused_at_load(config: str, field: str) -> None:
    text = f"detectors:\n  victorialogs:\n    config:\n      {config}\n"
    with pytest.raises(ConfigError, match=rf"\$\.detectors\.victorialogs\.config.*{field}"):
        load_config_text(text, "<test>", PLUGINS)


def test_several_servers_become_instances_of_one_toolset() -> None:
    # HolmesGPT 0.45 wraps VictoriaLogsToolset in multi_instance: one entry,
    # one instance per Service, named after it.
    services = [s for s in SERVICES if s.key.startswith(("logging/", "vm/vl"))]
    cycle = ENGINE.cycle(services, formats=["holmesgpt"], configmap=False)
    found = {d.key: d.endpoint for d in cycle.discovery.discovered if d.detector == "victorialogs"}
    assert len(found) == 5
    toolsets = yaml.safe_load(cycle.documents["custom_toolset.yaml"])["toolsets"]
    assert list(toolsets) == ["victorialogs"]
    instances = toolsets["victorialogs"]["config"]["instances"]
    assert {i["name"]: i["api_url"] for i in instances} == found


def test_a_service_annotated_for_the_custom_detector_stays_with_it() -> None:
    annotated = _chart_service(
        annotations={"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": "vl"}
    )
    (found,) = ENGINE.discover([annotated]).discovered
    assert found.detector == "custom"


def test_installed_distribution_registers_the_entry_point() -> None:
    check_entry_point("dyntoolset-victorialogs", VictoriaLogsDetector)
