"""Tests of the dyntoolset-kafka plugin, written only against dyntoolset's public API.

``fixtures/*.yaml`` hold the Services Strimzi and the Bitnami chart create,
each with an ``expect:`` block: what the detector returns, or ``none:`` (a
near miss no detector may take).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from dyntoolset_kafka import KafkaDetector

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
PLUGINS = make_plugin_set(KafkaDetector)


CASES = fixture_documents(FIXTURES)
SERVICES = [service_from_object(doc) for _, doc in CASES]


ENGINE = make_engine(PLUGINS)


@pytest.mark.parametrize("doc", [d for _, d in CASES], ids=[i for i, _ in CASES])
def test_strimzi_and_chart_services(doc: dict[str, Any]) -> None:
    found = discover_fixture(ENGINE, doc)
    if found is None:
        return
    expect = doc["expect"]
    assert found.detector == "kafka"
    # Kafka is checked by a TCP connect, not an HTTP GET.
    assert found.health_check == "tcp"
    (spec,) = found.toolsets
    assert spec.kind == "kafka/admin"
    assert spec.combine_key == "clusters"
    meta = doc["metadata"]
    broker = expect["endpoint"].removeprefix("kafka://")
    protocol = "SSL" if expect["tls"] else "PLAINTEXT"
    assert spec.config == {
        "clusters": [
            {
                "name": f"{meta['namespace']}/{meta['name']}",
                "broker": broker,
                "security_protocol": protocol,
            }
        ]
    }
    assert spec.description == f"Apache Kafka {meta['name']} in namespace {meta['namespace']}"


def test_fixtures_hold_every_source_renamed_releases_and_near_misses() -> None:
    found = {
        doc["metadata"]["name"] for _, doc in CASES if doc["expect"].get("detector") == "kafka"
    }
    assert found == {
        "my-cluster-kafka-bootstrap",  # Strimzi, the examples' listeners
        "events-kafka-bootstrap",  # Strimzi, custom listener names, plain one chosen
        "vault-kafka-bootstrap",  # Strimzi, TLS only
        "kafka",  # Bitnami, defaults
        "logs-bus",  # Bitnami, fullnameOverride, port 19092
        "audit-bus",  # Bitnami, nameOverride
    }
    assert sum(1 for _, doc in CASES if "none" in doc["expect"]) >= 8


def test_honours_the_detector_contract() -> None:
    check_detector(KafkaDetector, SERVICES)


# -- the prefilter: discovery calls detect() only for the Services it admits -------------


UNRELATED = [
    helm_service("redis", "19.6.4", "master", (6379, "tcp-redis")),
    helm_service("postgresql", "15.5.20", "primary", (5432, "tcp-postgresql")),
    # Kafka's port names and component, on another chart.
    helm_service("app-template", "3.3.2", "kafka", (9092, "tcp-client")),
    # Charts whose names only start with "kafka-".
    helm_service("kafka-ui", "0.7.6", "ui", (80, "http")),
    # Strimzi's other kinds: a KafkaBridge's Service.
    make_service(
        "bridge-bridge-service",
        "kafka",
        labels={"strimzi.io/kind": "KafkaBridge", "strimzi.io/cluster": "bridge"},
        ports=[(8080, "rest-api")],
    ),
]


@pytest.mark.parametrize("service", UNRELATED, ids=[s.name for s in UNRELATED])
def test_the_prefilter_keeps_unrelated_services_out(service: Service) -> None:
    assert KafkaDetector.prefilter is not None
    assert not KafkaDetector.prefilter.admits(service)


def test_the_prefilter_admits_every_service_the_detector_matches() -> None:
    matched = [s for s in SERVICES if run_detector(KafkaDetector, s) is not None]
    assert len(matched) == 6  # Strimzi's three, Bitnami's three
    assert KafkaDetector.prefilter is not None
    assert all(KafkaDetector.prefilter.admits(s) for s in matched)


def _bootstrap(
    name: str = "my-cluster-kafka-bootstrap",
    listeners: list[dict[str, Any]] | None = None,
    **changes: Any,
) -> Service:
    if listeners is None:
        listeners = [{"port": 9092, "tls": False, "auth": "none"}]
    values: dict[str, Any] = {
        "labels": {"strimzi.io/cluster": "my-cluster", "strimzi.io/kind": "Kafka"},
        "annotations": {"strimzi.io/discovery": json.dumps(listeners)},
        "ports": [(9091, "tcp-replication"), (9092, "tcp-clients")],
    }
    values.update(changes)
    return make_service(name, "kafka", **values)


def test_the_strimzi_sample_is_found() -> None:
    # The positive control of the near misses built from it below.
    found = run_detector(KafkaDetector, _bootstrap())
    assert found is not None and found.port is not None and found.port.port == 9092


@pytest.mark.parametrize(
    ("name", "changes", "why"),
    [
        (
            "my-cluster-kafka-bootstrap",
            {"service_type": "ExternalName", "cluster_ip": ""},
            "ExternalName",
        ),
        ("my-cluster-kafka-bootstrap", {"cluster_ip": "None"}, "headless"),
        ("my-cluster-kafka-brokers", {}, "not the bootstrap name"),
        ("my-cluster-kafka-plain-bootstrap", {}, "an external listener's bootstrap"),
        ("other-kafka-bootstrap", {}, "bootstrap of another strimzi.io/cluster"),
        ("my-cluster-kafka-bootstrap", {"ports": [(9091, "tcp-replication")]}, "replication only"),
        (
            "my-cluster-kafka-bootstrap",
            {"ports": [(9091, "tcp-replication"), Port(9092, "tcp-clients", "UDP")]},
            "UDP",
        ),
        (
            "my-cluster-kafka-bootstrap",
            {"labels": {"strimzi.io/cluster": "my-cluster", "strimzi.io/kind": "KafkaBridge"}},
            "another Strimzi kind",
        ),
        (
            "my-cluster-kafka-bootstrap",
            {"annotations": {"strimzi.io/discovery": '[{"port": 9094}]'}},
            "the annotation names no port of this Service",
        ),
    ],
)
def test_near_misses_built_from_the_strimzi_bootstrap(
    name: str, changes: dict[str, Any], why: str
) -> None:
    assert run_detector(KafkaDetector, _bootstrap(name, **changes)) is None, why


@pytest.mark.parametrize("annotation", [None, "not json", '{"port": 9092}', "[1, 2]"])
def test_without_a_readable_discovery_annotation_only_tcp_clients_is_taken(
    annotation: str | None,
) -> None:
    annotations = {} if annotation is None else {"strimzi.io/discovery": annotation}
    found = run_detector(KafkaDetector, _bootstrap(annotations=annotations))
    assert found is not None and found.port is not None and found.port.port == 9092
    renamed = _bootstrap(
        annotations=annotations, ports=[(9091, "tcp-replication"), (9095, "tcp-internal")]
    )
    assert run_detector(KafkaDetector, renamed) is None


def test_a_plain_listener_without_authentication_is_preferred() -> None:
    listeners = [
        {"port": 9093, "tls": True, "auth": "none"},
        {"port": 9094, "tls": False, "auth": "scram-sha-512"},
        {"port": 9095, "tls": False, "auth": "none"},
    ]
    ports = [(9091, "tcp-replication"), (9093, "tcp-a"), (9094, "tcp-b"), (9095, "tcp-c")]
    found = run_detector(KafkaDetector, _bootstrap(listeners=listeners, ports=ports))
    assert found is not None and found.port is not None and found.port.port == 9095


def test_the_chart_needs_its_client_port_and_component() -> None:
    labels = {"app.kubernetes.io/name": "kafka", "app.kubernetes.io/component": "kafka"}
    assert run_detector(
        KafkaDetector, make_service("kafka", "s", labels=labels, ports=[(9092, "")])
    )
    no_client = make_service("kafka", "s", labels=labels, ports=[(9094, "tcp-kafka")])
    assert run_detector(KafkaDetector, no_client) is None
    broker = {**labels, "app.kubernetes.io/component": "broker"}
    assert (
        run_detector(
            KafkaDetector, make_service("kafka", "s", labels=broker, ports=[(9092, "tcp-client")])
        )
        is None
    )
    strimzi = {**labels, "strimzi.io/kind": "Kafka", "strimzi.io/cluster": "x"}
    # A Strimzi Service (its name label is also kafka) follows Strimzi's rules only.
    assert (
        run_detector(
            KafkaDetector,
            make_service("x-kafka-0", "s", labels=strimzi, ports=[(9092, "tcp-client")]),
        )
        is None
    )


@pytest.mark.parametrize(
    ("config", "tls", "cluster"),
    [
        (
            {"username": "holmes", "password_env": "KAFKA_PASSWORD"},
            False,
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-512",
                "username": "holmes",
                "password": "{{ env.KAFKA_PASSWORD }}",
            },
        ),
        (
            {
                "username_env": "KAFKA_USER",
                "password_env": "KAFKA_PASSWORD",
                "sasl_mechanism": "PLAIN",
                "ca_file": "/etc/kafka/ca.crt",
            },
            True,
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "PLAIN",
                "username": "{{ env.KAFKA_USER }}",
                "password": "{{ env.KAFKA_PASSWORD }}",
                "ssl_ca_cert_path": "/etc/kafka/ca.crt",
            },
        ),
        (
            {"ca_file": "/etc/kafka/ca.crt"},
            True,
            {"security_protocol": "SSL", "ssl_ca_cert_path": "/etc/kafka/ca.crt"},
        ),
        ({"security_protocol": "SSL"}, False, {"security_protocol": "SSL"}),
    ],
)
def test_credentials_and_protocol(
    config: dict[str, Any], tls: bool, cluster: dict[str, Any]
) -> None:
    listeners = [{"port": 9092, "tls": tls, "auth": "none"}]
    found = run_detector(KafkaDetector, _bootstrap(listeners=listeners), config)
    assert found is not None
    (spec,) = found.toolsets
    assert spec.config == {
        "clusters": [
            {
                "name": "kafka/my-cluster-kafka-bootstrap",
                "broker": "my-cluster-kafka-bootstrap.kafka.svc.cluster.local:9092",
                **cluster,
            }
        ]
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"password_env": "KAFKA_PASSWORD"}, "password_env needs username or username_env"),
        ({"verify_ssl": False}, "verify_ssl: HolmesGPT's kafka/admin toolset has no such setting"),
        ({"token_env": "KAFKA_TOKEN"}, "token_env: HolmesGPT's kafka/admin toolset"),
        (
            {"sasl_mechanism": "GSSAPI"},
            "'GSSAPI' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            {"security_protocol": "TLS"},
            "'TLS' is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
        ),
        ({"brokers": "x"}, "unknown key"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        run_detector(KafkaDetector, _bootstrap(), config)
    text = str(info.value)
    assert "$.detectors.kafka.config" in text
    assert message in text


def test_the_health_check_kind_can_be_overridden() -> None:
    found = run_detector(KafkaDetector, _bootstrap(), health_check="none")
    assert found is not None and found.health_check == "none"


def test_engine_joins_every_kafka_into_one_toolset() -> None:
    cycle = ENGINE.cycle(SERVICES, formats=["holmesgpt", "kubernaut"], configmap=False)
    taken = {d.key: d.detector for d in cycle.discovery.discovered}
    assert taken == {
        "kafka/my-cluster-kafka-bootstrap": "kafka",
        "streaming/events-kafka-bootstrap": "kafka",
        "secure/vault-kafka-bootstrap": "kafka",
        "streaming/kafka": "kafka",
        "logging/logs-bus": "kafka",
        "audit/audit-bus": "kafka",
    }
    toolsets = yaml.safe_load(cycle.documents["custom_toolset.yaml"])["toolsets"]
    assert list(toolsets) == ["kafka/admin"]
    clusters = toolsets["kafka/admin"]["config"]["clusters"]
    assert {c["name"]: c["broker"] for c in clusters} == {
        d.key: d.endpoint.removeprefix("kafka://") for d in cycle.discovery.discovered
    }


def test_a_service_annotated_for_the_custom_detector_stays_with_it() -> None:
    annotated = _bootstrap(
        annotations={"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": "kafka"}
    )
    (found,) = ENGINE.discover([annotated]).discovered
    assert found.detector == "custom"


def test_installed_distribution_registers_the_entry_point() -> None:
    check_entry_point("dyntoolset-kafka", KafkaDetector)
