"""Credentials and TLS settings: validated at load, written as HolmesGPT placeholders."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from dyntoolset import Engine
from dyntoolset.config import load_config_text
from dyntoolset.detectors import elasticsearch, grafana, prometheus
from dyntoolset.errors import ConfigError
from dyntoolset.plugin import AUTH_KEYS, AuthKeys, CredentialSettings, credential_config
from dyntoolset.testing import make_plugin_set, make_service, run_detector

ECK = make_service(
    "logs-es-http",
    "elastic",
    labels={"common.k8s.elastic.co/type": "elasticsearch"},
    ports=[(9200, "https")],
)
GRAFANA = make_service(
    "grafana", "mon", labels={"app.kubernetes.io/name": "grafana"}, ports=[(80, "http-web")]
)
PROMETHEUS = make_service(
    "prom",
    "mon",
    labels={"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"},
    ports=[(9090, "http-web")],
)


def _configs(detector: Any, service: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    found = run_detector(detector, service, config)
    assert found is not None
    return [dict(spec.config) for spec in found.toolsets]


def _problems(detector: Any, service: Any, config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        run_detector(detector, service, config)
    return [str(p) for p in info.value.problems]


def test_eck_basic_auth_as_elastic_with_a_self_signed_ca() -> None:
    configs = _configs(
        elasticsearch.ElasticsearchDetector,
        ECK,
        {"password_env": "ES_PASSWORD", "verify_ssl": False},
    )
    expected = {
        "api_url": "https://logs-es-http.elastic.svc.cluster.local:9200",
        "username": "elastic",
        "password": "{{ env.ES_PASSWORD }}",
        "verify_ssl": False,
    }
    assert configs == [expected, expected]  # elasticsearch/cluster and /data


def test_elasticsearch_user_from_the_environment_or_an_api_key() -> None:
    configs = _configs(
        elasticsearch.ElasticsearchDetector,
        ECK,
        {"username_env": "ES_USER", "password_env": "ES_PASSWORD"},
    )
    assert configs[0]["username"] == "{{ env.ES_USER }}"
    assert configs[0]["password"] == "{{ env.ES_PASSWORD }}"
    configs = _configs(elasticsearch.ElasticsearchDetector, ECK, {"api_key_env": "ES_KEY"})
    assert configs[0] == {
        "api_url": "https://logs-es-http.elastic.svc.cluster.local:9200",
        "api_key": "{{ env.ES_KEY }}",
    }


def test_nothing_configured_writes_no_credentials() -> None:
    configs = _configs(elasticsearch.ElasticsearchDetector, ECK, {})
    assert configs[0] == {"api_url": "https://logs-es-http.elastic.svc.cluster.local:9200"}


def test_grafana_basic_auth_and_api_key() -> None:
    (config,) = _configs(
        grafana.GrafanaDetector,
        GRAFANA,
        {"username": "admin", "password_env": "GRAFANA_PASSWORD", "verify_ssl": True},
    )
    assert config == {
        "api_url": "http://grafana.mon.svc.cluster.local:80",
        "username": "admin",
        "password": "{{ env.GRAFANA_PASSWORD }}",
        "verify_ssl": True,
    }


def test_prometheus_bearer_token_goes_into_additional_headers() -> None:
    (config,) = _configs(
        prometheus.PrometheusDetector, PROMETHEUS, {"token_env": "PROM_TOKEN", "verify_ssl": False}
    )
    assert config == {
        "prometheus_url": "http://prom.mon.svc.cluster.local:9090",
        "additional_headers": {"Authorization": "Bearer {{ env.PROM_TOKEN }}"},
        "verify_ssl": False,
    }


@pytest.mark.parametrize(
    ("detector", "service", "config", "message"),
    [
        (
            grafana.GrafanaDetector,
            GRAFANA,
            {"password_env": "P"},
            "$.detectors.grafana.config: password_env needs username or username_env",
        ),
        (
            grafana.GrafanaDetector,
            GRAFANA,
            {"username": "admin"},
            "$.detectors.grafana.config: username needs password_env: basic auth takes both",
        ),
        (
            elasticsearch.ElasticsearchDetector,
            ECK,
            {"username": "a", "username_env": "U", "password_env": "P"},
            "$.detectors.elasticsearch.config: set username or username_env, not both",
        ),
        (
            elasticsearch.ElasticsearchDetector,
            ECK,
            {"api_key_env": "K", "password_env": "P"},
            "$.detectors.elasticsearch.config: password_env and api_key_env exclude each "
            "other: choose one way to log in",
        ),
        (
            elasticsearch.ElasticsearchDetector,
            ECK,
            {"token_env": "T"},
            "$.detectors.elasticsearch.config: token_env: HolmesGPT's elasticsearch toolset "
            "has no such setting",
        ),
        (
            elasticsearch.ElasticsearchDetector,
            ECK,
            {"ca_file": "/etc/ca/ca.crt"},
            "$.detectors.elasticsearch.config: ca_file: HolmesGPT's elasticsearch toolset has "
            "no such setting; give HolmesGPT the CA bundle in its CERTIFICATE environment "
            "variable, or set verify_ssl: false",
        ),
        (
            prometheus.PrometheusDetector,
            PROMETHEUS,
            {"username": "u", "password_env": "P"},
            "$.detectors.prometheus.config: username: HolmesGPT's prometheus/metrics toolset "
            "has no such setting; password_env: HolmesGPT's prometheus/metrics toolset has no "
            "such setting",
        ),
        (
            grafana.GrafanaDetector,
            GRAFANA,
            {"password_env": "GRAFANA-PASSWORD", "username": "admin"},
            "$.detectors.grafana.config.password_env: 'GRAFANA-PASSWORD' is not an environment "
            "variable name (letters, digits and '_', not starting with a digit)",
        ),
        (
            grafana.GrafanaDetector,
            GRAFANA,
            {"username": "{{ env.X }}", "password_env": "P"},
            "$.detectors.grafana.config.username: '{{ env.X }}' is not a plain user name "
            "(letters, digits and '_.@+-'); to read it from HolmesGPT's environment, use "
            "username_env",
        ),
        (
            grafana.GrafanaDetector,
            GRAFANA,
            {"verify_ssl": "false"},
            "$.detectors.grafana.config.verify_ssl: expected bool (true or false), got 'false'",
        ),
    ],
)
def test_bad_credentials_are_refused_naming_the_field(
    detector: Any, service: Any, config: dict[str, Any], message: str
) -> None:
    assert _problems(detector, service, config) == [message]


@attrs.frozen
class _KafkaLike(CredentialSettings):
    auth_keys = AuthKeys("kafka/admin", username="sasl_username", ca_file="ssl_ca_cert_path")


def test_a_plugin_names_its_own_keys_including_a_ca_file() -> None:
    settings = _KafkaLike(username="holmes", password_env="KAFKA_PASSWORD", ca_file="/etc/ca.pem")
    assert credential_config(settings, _KafkaLike.auth_keys) == {
        "sasl_username": "holmes",
        "password": "{{ env.KAFKA_PASSWORD }}",
        "ssl_ca_cert_path": "/etc/ca.pem",
    }
    with pytest.raises(ValueError, match="ca_file with verify_ssl: false"):
        _KafkaLike(ca_file="/etc/ca.pem", verify_ssl=False)
    with pytest.raises(ValueError, match="not an absolute file path"):
        _KafkaLike(ca_file="../ca.pem")


def test_the_builder_refuses_keys_the_toolset_cannot_carry() -> None:
    # Settings without auth_keys accept every field; writing them for a toolset
    # that lacks one is a programming error, never a silent drop.
    settings = CredentialSettings(token_env="TOKEN")
    with pytest.raises(ValueError, match="token_env: HolmesGPT's elasticsearch toolset"):
        credential_config(settings, AUTH_KEYS["elasticsearch/data"])


def test_secret_values_never_reach_the_configmap(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cr3t-VALUE-never-written"
    for name in ("ES_PASSWORD", "GRAFANA_TOKEN", "PROM_TOKEN"):
        monkeypatch.setenv(name, secret)
    plugins = make_plugin_set()
    config = load_config_text(
        "detectors:\n"
        "  elasticsearch: {config: {password_env: ES_PASSWORD, verify_ssl: false}}\n"
        "  grafana: {config: {api_key_env: GRAFANA_TOKEN}}\n"
        "  prometheus: {config: {token_env: PROM_TOKEN}}\n",
        "<test>",
        plugins,
    )
    cycle = Engine(config, plugins).cycle([ECK, GRAFANA, PROMETHEUS])
    assert cycle.merge is not None
    text = json.dumps(cycle.merge.configmap)
    assert secret not in text
    holmes = cycle.documents["custom_toolset.yaml"]
    for placeholder in (
        "password: '{{ env.ES_PASSWORD }}'",
        "api_key: '{{ env.GRAFANA_TOKEN }}'",
        "Authorization: Bearer {{ env.PROM_TOKEN }}",
    ):
        assert placeholder in holmes
