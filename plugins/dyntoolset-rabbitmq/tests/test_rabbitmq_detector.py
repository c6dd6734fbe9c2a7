"""Tests of the dyntoolset-rabbitmq plugin, written only against dyntoolset's public API.

``fixtures/*.yaml`` hold the Services the RabbitMQ cluster operator and the
Bitnami chart create, each with an ``expect:`` block: what the detector
returns, or ``none:`` (a near miss no detector may take).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from dyntoolset_rabbitmq import RabbitMQDetector

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
PLUGINS = make_plugin_set(RabbitMQDetector)


CASES = fixture_documents(FIXTURES)
SERVICES = [service_from_object(doc) for _, doc in CASES]


ENGINE = make_engine(PLUGINS)


@pytest.mark.parametrize("doc", [d for _, d in CASES], ids=[i for i, _ in CASES])
def test_operator_and_chart_services(doc: dict[str, Any]) -> None:
    found = discover_fixture(ENGINE, doc)
    if found is None:
        return
    expect = doc["expect"]
    assert found.detector == "rabbitmq"
    assert found.health_path == "/"
    (spec,) = found.toolsets
    assert spec.kind == "rabbitmq/core"
    assert spec.combine_key == "clusters"
    meta = doc["metadata"]
    key = f"{meta['namespace']}/{meta['name']}"
    # No credentials configured: no login is written (never an empty one).
    assert spec.config == {"clusters": [{"id": key, "api_url": expect["endpoint"]}]}
    assert spec.description == f"RabbitMQ {meta['name']} in namespace {meta['namespace']}"


def test_fixtures_hold_every_source_renamed_releases_and_near_misses() -> None:
    found = {
        doc["metadata"]["name"] for _, doc in CASES if doc["expect"].get("detector") == "rabbitmq"
    }
    assert found == {
        "production",  # operator, defaults
        "secure",  # operator, TLS only
        "orders",  # operator, TLS and plain, LoadBalancer
        "rabbitmq",  # Bitnami, defaults
        "events-broker",  # Bitnami, nameOverride, port renamed
    }
    assert sum(1 for _, doc in CASES if "none" in doc["expect"]) >= 5


def test_honours_the_detector_contract() -> None:
    check_detector(RabbitMQDetector, SERVICES)


# -- the prefilter: discovery calls detect() only for the Services it admits -------------


UNRELATED = [
    helm_service("redis", "19.6.4", "master", (6379, "tcp-redis")),
    helm_service("postgresql", "15.5.20", "primary", (5432, "tcp-postgresql")),
    # A chart's own "rabbitmq" component, with RabbitMQ's port names.
    helm_service("app-template", "3.3.2", "rabbitmq", (15672, "management")),
    # The cluster operator's chart: its name only starts with "rabbitmq-".
    helm_service("rabbitmq-cluster-operator", "4.3.2", "operator", (9782, "http")),
]


@pytest.mark.parametrize("service", UNRELATED, ids=[s.name for s in UNRELATED])
def test_the_prefilter_keeps_unrelated_helm_services_out(service: Service) -> None:
    assert RabbitMQDetector.prefilter is not None
    assert not RabbitMQDetector.prefilter.admits(service)


def test_the_prefilter_admits_every_service_the_detector_matches() -> None:
    matched = [s for s in SERVICES if run_detector(RabbitMQDetector, s) is not None]
    assert len(matched) == 5  # the operator's three, Bitnami's two
    assert RabbitMQDetector.prefilter is not None
    assert all(RabbitMQDetector.prefilter.admits(s) for s in matched)


def _operator_service(name: str = "production", **changes: Any) -> Service:
    values: dict[str, Any] = {
        "labels": {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/component": "rabbitmq",
            "app.kubernetes.io/part-of": "rabbitmq",
        },
        "ports": [(5672, "amqp"), (15672, "management")],
    }
    values.update(changes)
    return make_service(name, "messaging", **values)


def test_the_operator_sample_is_found() -> None:
    # The positive control of the near misses built from it below.
    found = run_detector(RabbitMQDetector, _operator_service())
    assert found is not None and found.port is not None and found.port.port == 15672


@pytest.mark.parametrize(
    ("name", "changes", "why"),
    [
        ("production", {"service_type": "ExternalName", "cluster_ip": ""}, "ExternalName"),
        ("production", {"cluster_ip": "None"}, "headless"),
        ("production-nodes", {}, "the operator's headless twin by name"),
        ("rabbitmq-headless", {}, "the chart's headless twin by name"),
        ("production", {"ports": [(5672, "amqp"), (4369, "epmd")]}, "no management port"),
        ("production", {"ports": [Port(15672, "management", "UDP")]}, "UDP"),
        (
            "production",
            {"labels": {"app.kubernetes.io/part-of": "rabbitmq"}},
            "part-of alone (the operator's own Services)",
        ),
        (
            "production",
            {"labels": {"helm.sh/chart": "rabbitmq-cluster-operator-4.4.34"}},
            "the cluster operator's chart",
        ),
    ],
)
def test_near_misses_built_from_the_operator_service(
    name: str, changes: dict[str, Any], why: str
) -> None:
    assert run_detector(RabbitMQDetector, _operator_service(name, **changes)) is None, why


def test_a_port_numbered_15672_is_enough() -> None:
    svc = make_service(
        "mq",
        "queues",
        labels={"app.kubernetes.io/name": "rabbitmq"},
        ports=[(5672, "tcp-amqp"), (15672, "tcp-mgmt")],
    )
    found = run_detector(RabbitMQDetector, svc)
    assert found is not None
    assert found.endpoint == "http://mq.queues.svc.cluster.local:15672"


def test_configured_health_path_and_domain() -> None:
    found = run_detector(
        RabbitMQDetector,
        _operator_service(),
        cluster_domain="k8s.example",
        health_path="/api/overview",
    )
    assert found is not None
    assert found.endpoint == "http://production.messaging.svc.k8s.example:15672"
    assert found.health_path == "/api/overview"


@pytest.mark.parametrize(
    ("config", "cluster"),
    [
        (
            {"username": "holmes", "password_env": "RABBITMQ_PASSWORD"},
            {"username": "holmes", "password": "{{ env.RABBITMQ_PASSWORD }}"},
        ),
        (
            {"username_env": "RABBITMQ_USER", "password_env": "RABBITMQ_PASSWORD"},
            {"username": "{{ env.RABBITMQ_USER }}", "password": "{{ env.RABBITMQ_PASSWORD }}"},
        ),
        ({"verify_ssl": False}, {"verify_ssl": False}),
    ],
)
def test_credentials_become_environment_placeholders(
    config: dict[str, Any], cluster: dict[str, Any]
) -> None:
    found = run_detector(RabbitMQDetector, _operator_service(), config)
    assert found is not None
    (spec,) = found.toolsets
    assert spec.config == {
        "clusters": [
            {
                "id": "messaging/production",
                "api_url": "http://production.messaging.svc.cluster.local:15672",
                **cluster,
            }
        ]
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"password_env": "RABBITMQ_PASSWORD"}, "password_env needs username or username_env"),
        ({"username": "holmes"}, "username needs password_env: basic auth takes both"),
        ({"api_key_env": "RABBITMQ_KEY"}, "api_key_env: HolmesGPT's rabbitmq/core toolset"),
        ({"ca_file": "/etc/ca.pem"}, "ca_file: HolmesGPT's rabbitmq/core toolset"),
        ({"password_env": "1bad", "username": "holmes"}, "is not an environment variable name"),
        ({"vhost": "/"}, "unknown key"),
    ],
)
def test_bad_credentials_are_refused_naming_the_field(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        run_detector(RabbitMQDetector, _operator_service(), config)
    text = str(info.value)
    assert "$.detectors.rabbitmq.config" in text
    assert message in text


def test_engine_joins_every_rabbitmq_into_one_toolset() -> None:
    engine = make_engine(
        PLUGINS,
        "detectors:\n  rabbitmq:\n    config:\n"
        "      username: holmes\n      password_env: RABBITMQ_PASSWORD\n",
    )
    cycle = engine.cycle(SERVICES, formats=["holmesgpt"], configmap=False)
    taken = {d.key: d.detector for d in cycle.discovery.discovered}
    assert taken == {
        "messaging/production": "rabbitmq",
        "payments/secure": "rabbitmq",
        "shop/orders": "rabbitmq",
        "queues/rabbitmq": "rabbitmq",
        "events/events-broker": "rabbitmq",
    }
    toolsets = yaml.safe_load(cycle.documents["custom_toolset.yaml"])["toolsets"]
    assert list(toolsets) == ["rabbitmq/core"]
    assert toolsets["rabbitmq/core"]["enabled"] is True
    clusters = toolsets["rabbitmq/core"]["config"]["clusters"]
    assert {c["id"]: c["api_url"] for c in clusters} == {
        d.key: d.endpoint for d in cycle.discovery.discovered
    }
    # The secret stays in HolmesGPT's environment; only its name is written.
    assert all(c["password"] == "{{ env.RABBITMQ_PASSWORD }}" for c in clusters)
    assert all(c["username"] == "holmes" for c in clusters)


def test_a_service_annotated_for_the_custom_detector_stays_with_it() -> None:
    annotated = _operator_service(
        annotations={"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": "rabbitmq"}
    )
    (found,) = ENGINE.discover([annotated]).discovered
    assert found.detector == "custom"


def test_installed_distribution_registers_the_entry_point() -> None:
    check_entry_point("dyntoolset-rabbitmq", RabbitMQDetector)
