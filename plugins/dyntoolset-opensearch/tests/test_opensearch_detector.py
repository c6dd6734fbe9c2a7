"""Tests of the dyntoolset-opensearch plugin, written only against dyntoolset's public API.

``fixtures/*.yaml`` hold the Services the charts and the operator create,
each with an ``expect:`` block: what the detector returns, or ``none:`` (a
near miss no detector may take).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from dyntoolset_opensearch import FLAVOR_KEY, OpenSearchDetector

from dyntoolset import ConfigError, Engine, load_config_text, service_from_object
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
PLUGINS = make_plugin_set(OpenSearchDetector)
ENGINE = Engine.load(None, plugins=PLUGINS)


@pytest.mark.parametrize("doc", [d for _, d in CASES], ids=[i for i, _ in CASES])
def test_chart_and_operator_services(doc: dict[str, Any]) -> None:
    found = discover_fixture(ENGINE, doc)
    if found is None:
        return
    expect = doc["expect"]
    assert found.detector == "opensearch"
    assert found.type == "opensearch"
    assert found.health_check == "tcp"
    assert found.health_path == "/_cluster/health"
    cluster, data = found.toolsets
    assert (cluster.kind, data.kind) == ("elasticsearch/cluster", "elasticsearch/data")
    # No login configured: the URL only, no credential key at all.
    assert cluster.config == data.config == {"api_url": expect["endpoint"]}
    meta = doc["metadata"]
    where = f"OpenSearch {meta['name']} in namespace {meta['namespace']}"
    assert cluster.description == f"Cluster health of {where}"
    assert data.description == f"Indices and documents of {where}"
    assert "is OpenSearch, not Elasticsearch" in cluster.llm_instructions


def test_fixtures_hold_every_source_renamed_releases_and_near_misses() -> None:
    found = {
        (doc["metadata"]["name"], service_from_object(doc).key)
        for _, doc in CASES
        if doc["expect"].get("detector") == "opensearch"
    }
    flavors = {
        key: d.metadata[FLAVOR_KEY] for d in ENGINE.discover(SERVICES).discovered for key in [d.key]
    }
    assert {key for _, key in found} == set(flavors)
    assert flavors == {
        "search/opensearch-cluster-master": "chart",
        "logging/logs-os-master": "chart",  # nameOverride, custom port names
        "opensearch/logs": "operator",
        "opensearch/audit-search": "operator",  # own serviceName, httpPort 9201
        "analytics/opensearch": "bitnami",
        "analytics/search": "bitnami",  # fullnameOverride, nameOverride, masters only
    }
    assert sum(1 for _, doc in CASES if "none" in doc["expect"]) >= 7


def test_honours_the_detector_contract() -> None:
    check_detector(OpenSearchDetector, SERVICES)


# -- the prefilter: discovery calls detect() only for the Services it admits -------------


UNRELATED = [
    helm_service("redis", "19.6.4", "master", (6379, "tcp-redis")),
    helm_service("postgresql", "15.5.20", "primary", (5432, "tcp-postgresql")),
    # OpenSearch's port names and components, on other charts.
    helm_service("nginx", "18.1.7", "master", (80, "http")),
    helm_service("app-template", "3.3.2", "coordinating-only", (9200, "tcp-rest-api")),
    # OpenSearch Dashboards: its chart name only starts with "opensearch-".
    helm_service("opensearch-dashboards", "2.24.0", "dashboards", (5601, "http")),
]


@pytest.mark.parametrize("service", UNRELATED, ids=[s.name for s in UNRELATED])
def test_the_prefilter_keeps_unrelated_helm_services_out(service: Service) -> None:
    assert OpenSearchDetector.prefilter is not None
    assert not OpenSearchDetector.prefilter.admits(service)


def test_the_prefilter_admits_every_service_the_detector_matches() -> None:
    matched = [s for s in SERVICES if run_detector(OpenSearchDetector, s) is not None]
    assert len(matched) == 6  # two of each source
    assert OpenSearchDetector.prefilter is not None
    assert all(OpenSearchDetector.prefilter.admits(s) for s in matched)


def _chart_service(name: str = "opensearch-cluster-master", **changes: Any) -> Service:
    values: dict[str, Any] = {
        "labels": {"app.kubernetes.io/name": "opensearch", "helm.sh/chart": "opensearch-3.2.1"},
        "ports": [(9200, "http"), (9300, "transport")],
    }
    values.update(changes)
    return make_service(name, "search", **values)


def test_the_chart_sample_is_found() -> None:
    # The positive control of the near misses built from it below.
    found = run_detector(OpenSearchDetector, _chart_service())
    assert found is not None
    assert found.endpoint == "https://opensearch-cluster-master.search.svc.cluster.local:9200"


@pytest.mark.parametrize(
    ("name", "changes", "why"),
    [
        (
            "opensearch-cluster-master",
            {"service_type": "ExternalName", "cluster_ip": ""},
            "ExternalName",
        ),
        ("opensearch-cluster-master", {"cluster_ip": "None"}, "headless"),
        ("opensearch-cluster-master-headless", {}, "headless by name"),
        (
            "opensearch-cluster-master",
            {"ports": [(9300, "transport"), (9600, "metrics")]},
            "no REST port",
        ),
        ("opensearch-cluster-master", {"ports": [Port(9200, "http", "UDP")]}, "UDP"),
        (
            "opensearch-cluster-master",
            {"labels": {"app.kubernetes.io/name": "elasticsearch"}},
            "another product",
        ),
        (
            "opensearch-dashboards",
            {"labels": {"helm.sh/chart": "opensearch-dashboards-3.2.1"}, "ports": [(5601, "http")]},
            "the Dashboards chart",
        ),
        (
            "opensearch",
            {
                "labels": {
                    "app.kubernetes.io/name": "opensearch",
                    "app.kubernetes.io/component": "data",
                },
                "ports": [(9200, "tcp-rest-api")],
            },
            "a Bitnami Service that is not the client one",
        ),
        (
            "logs-masters",
            {
                "labels": {
                    "opster.io/opensearch-cluster": "logs",
                    "opster.io/opensearch-nodepool": "masters",
                }
            },
            "an operator node pool's Service, even if not headless",
        ),
    ],
)
def test_near_misses_built_from_the_chart_service(
    name: str, changes: dict[str, Any], why: str
) -> None:
    assert run_detector(OpenSearchDetector, _chart_service(name, **changes)) is None, why


_CHART = ("opensearch-cluster-master", "http")  # the chart's component and port names
_BITNAMI = ("master", "tcp-rest-api")


@pytest.mark.parametrize(
    ("install", "protocol", "scheme"),
    [
        (_CHART, "auto", "https"),  # the chart: security plugin with TLS
        (_CHART, "http", "http"),  # a chart install with plugins.security.disabled
        (_BITNAMI, "auto", "http"),  # Bitnami: security off by default
        (_BITNAMI, "https", "https"),  # Bitnami with security.enabled
        (("master", "https"), "auto", "https"),  # a port named https wins over the default
    ],
)
def test_protocol_setting_and_defaults_per_install(
    install: tuple[str, str], protocol: str, scheme: str
) -> None:
    component, port_name = install
    labels = {"app.kubernetes.io/name": "opensearch", "app.kubernetes.io/component": component}
    svc = _chart_service(labels=labels, ports=[(9200, port_name)])
    found = run_detector(OpenSearchDetector, svc, {"protocol": protocol})
    assert found is not None
    assert found.endpoint == f"{scheme}://opensearch-cluster-master.search.svc.cluster.local:9200"


def test_an_unknown_protocol_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"\$\.detectors\.opensearch\.config\.protocol"):
        run_detector(OpenSearchDetector, _chart_service(), {"protocol": "ftp"})


def _toolsets_with(config: str) -> dict[str, Any]:
    engine = make_engine(PLUGINS, config)
    cycle = engine.cycle([_chart_service()], formats=["holmesgpt"], configmap=False)
    toolsets: dict[str, Any] = yaml.safe_load(cycle.documents["custom_toolset.yaml"])["toolsets"]
    return toolsets


def test_password_from_the_environment_as_admin_and_verify_ssl_off() -> None:
    toolsets = _toolsets_with(
        "detectors:\n  opensearch:\n    config:\n"
        "      password_env: OPENSEARCH_PASSWORD\n      verify_ssl: false\n"
    )
    # One server: HolmesGPT's flat config (several become config.instances).
    for kind in ("elasticsearch/cluster", "elasticsearch/data"):
        assert toolsets[kind]["config"] == {
            "api_url": "https://opensearch-cluster-master.search.svc.cluster.local:9200",
            "username": "admin",
            "password": "{{ env.OPENSEARCH_PASSWORD }}",
            "verify_ssl": False,
        }


def test_user_and_api_key_from_the_environment() -> None:
    toolsets = _toolsets_with(
        "detectors:\n  opensearch:\n    config:\n"
        "      username_env: OS_USER\n      password_env: OS_PASSWORD\n"
    )
    instance = toolsets["elasticsearch/data"]["config"]
    assert (instance["username"], instance["password"]) == (
        "{{ env.OS_USER }}",
        "{{ env.OS_PASSWORD }}",
    )
    toolsets = _toolsets_with("detectors:\n  opensearch:\n    config:\n      api_key_env: OS_KEY\n")
    instance = toolsets["elasticsearch/cluster"]["config"]
    assert instance["api_key"] == "{{ env.OS_KEY }}"
    assert "password" not in instance and "username" not in instance


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ("ca_file: /etc/ssl/os.pem", "ca_file"),  # the toolset has no CA key
        ("token_env: OS_TOKEN", "token_env"),  # nor a bearer token
        ("password_env: 'not a name'", "password_env"),
    ],
)
def test_a_credential_the_toolset_cannot_carry_is_refused_at_load(config: str, field: str) -> None:
    text = f"detectors:\n  opensearch:\n    config:\n      {config}\n"
    with pytest.raises(ConfigError, match=rf"\$\.detectors\.opensearch\.config.*{field}"):
        load_config_text(text, "<test>", PLUGINS)


def test_the_elasticsearch_built_in_and_the_plugin_share_the_instances() -> None:
    eck = make_service(
        "logs-es-http",
        "elastic",
        labels={"common.k8s.elastic.co/type": "elasticsearch"},
        ports=[(9200, "https")],
    )
    cycle = ENGINE.cycle([eck, *SERVICES], formats=["holmesgpt"], configmap=False)
    taken = {d.key: d.detector for d in cycle.discovery.discovered}
    assert taken["elastic/logs-es-http"] == "elasticsearch"
    assert sorted(k for k, v in taken.items() if v == "opensearch") == [
        "analytics/opensearch",
        "analytics/search",
        "logging/logs-os-master",
        "opensearch/audit-search",
        "opensearch/logs",
        "search/opensearch-cluster-master",
    ]
    toolsets = yaml.safe_load(cycle.documents["custom_toolset.yaml"])["toolsets"]
    names = [i["name"] for i in toolsets["elasticsearch/cluster"]["config"]["instances"]]
    assert sorted(names) == sorted(taken)


def test_a_service_annotated_for_the_custom_detector_stays_with_it() -> None:
    annotated = _chart_service(
        annotations={"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": "search"}
    )
    (found,) = ENGINE.discover([annotated]).discovered
    assert found.detector == "custom"


def test_installed_distribution_registers_the_entry_point() -> None:
    check_entry_point("dyntoolset-opensearch", OpenSearchDetector)
