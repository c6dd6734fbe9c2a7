"""--config-configmap: the configuration read through the API, validated like a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dyntoolset.config import load_config, load_config_text
from dyntoolset.errors import ConfigError
from dyntoolset.kube.config_source import (
    ConfigMapRef,
    ConfigSourceError,
    parse_ref,
    read_config_configmap,
)
from dyntoolset.plugins import load_plugins
from dyntoolset.testing.apiserver import ApiServer

REF = ConfigMapRef("ops", "dyntoolset-config")

VALID = """\
resync_interval: 60
detectors:
  grafana:
    enabled: false
  prometheus:
    priority: 7
"""

# Three problems in two phases: all must be listed.
INVALID = """\
resync_interval: -1
detectors:
  grafana:
    enabled: maybe
  nosuchdetector: {}
"""


def configmap(data: dict[str, str], name: str = "dyntoolset-config") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ops"},
        "data": data,
    }


def no_sleep(seconds: float) -> None:
    pass


def test_parse_ref() -> None:
    assert parse_ref("ops/dyntoolset") == ConfigMapRef("ops", "dyntoolset", "config.yaml")
    assert parse_ref("ops/dyntoolset:detectors.yaml") == ConfigMapRef(
        "ops", "dyntoolset", "detectors.yaml"
    )
    assert str(parse_ref("ops/a.b:k")) == "configmap ops/a.b:k"
    for bad, message in [
        ("dyntoolset", "expected NAMESPACE/NAME"),
        ("Ops/x", "namespace 'Ops' is not a DNS label"),
        ("ops/", "ConfigMap name '' is not a DNS subdomain"),
        ("ops/x:", "key '' is not a valid ConfigMap key"),
        ("ops/x:a/b", "key 'a/b' is not a valid ConfigMap key"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_ref(bad)


def test_a_configmap_gives_the_same_configuration_as_a_file(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    apiserver.create(configmap({"config.yaml": VALID}))
    text, source = read_config_configmap(apiserver.api_client, REF)
    assert (text, source) == (VALID, "configmap ops/dyntoolset-config:config.yaml")
    plugins = load_plugins()
    from_api = load_config_text(text, source, plugins)
    file = tmp_path / "config.yaml"
    file.write_text(VALID)
    from_file = load_config(file, plugins)
    assert from_api.resync_interval == from_file.resync_interval == 60
    assert not from_api.detectors["grafana"].enabled
    assert from_api.detectors["prometheus"].priority == 7
    assert from_api.detectors == from_file.detectors
    # One GET, with a timeout (the emulator logs it like any request).
    assert apiserver.count(verb="get", resource="configmaps") == 1


def test_an_invalid_configmap_lists_every_problem_as_a_file_would(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    apiserver.create(configmap({"config.yaml": INVALID}))
    text, source = read_config_configmap(apiserver.api_client, REF)
    plugins = load_plugins()
    with pytest.raises(ConfigError) as from_api:
        load_config_text(text, source, plugins)
    file = tmp_path / "config.yaml"
    file.write_text(INVALID)
    with pytest.raises(ConfigError) as from_file:
        load_config(file, plugins)
    assert from_api.value.problems == from_file.value.problems
    assert len(from_api.value.problems) >= 3
    assert "in configmap ops/dyntoolset-config:config.yaml" in str(from_api.value)


def test_a_named_key_is_read(apiserver: ApiServer) -> None:
    apiserver.create(configmap({"config.yaml": "", "other.yaml": VALID}))
    text, source = read_config_configmap(
        apiserver.api_client, parse_ref("ops/dyntoolset-config:other.yaml")
    )
    assert text == VALID
    assert source.endswith(":other.yaml")


def test_a_missing_configmap_means_defaults_with_a_log_line(
    apiserver: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert read_config_configmap(apiserver.api_client, REF) == ("", "defaults")
    assert "ConfigMap ops/dyntoolset-config not found; using the default" in caplog.text


def test_a_missing_key_is_a_configuration_error_naming_the_keys(apiserver: ApiServer) -> None:
    apiserver.create(configmap({"detectors.yaml": VALID, "notes": "x"}))
    with pytest.raises(ConfigError) as caught:
        read_config_configmap(apiserver.api_client, REF)
    message = str(caught.value)
    assert "configmap ops/dyntoolset-config:config.yaml" in message
    assert "no data key 'config.yaml' (its keys: detectors.yaml, notes)" in message


def test_forbidden_names_the_missing_rbac_rule_without_retrying(apiserver: ApiServer) -> None:
    apiserver.fail(403, reason="Forbidden", verb="get", resource="configmaps")
    with pytest.raises(ConfigSourceError) as caught:
        read_config_configmap(apiserver.api_client, REF, sleep=no_sleep)
    assert "403" in str(caught.value)
    assert 'apiGroups: [""], resources: [configmaps], verbs: [get]' in str(caught.value)
    assert "(resourceNames: [dyntoolset-config]) in namespace ops" in str(caught.value)
    assert apiserver.count(verb="get", resource="configmaps") == 1


def test_temporary_failures_are_retried_with_backoff(apiserver: ApiServer) -> None:
    apiserver.create(configmap({"config.yaml": VALID}))
    apiserver.fail(500, verb="get", resource="configmaps", times=1)
    apiserver.fail(429, retry_after=3, verb="get", resource="configmaps", times=1)
    waits: list[float] = []
    text, _ = read_config_configmap(apiserver.api_client, REF, sleep=waits.append)
    assert text == VALID
    assert len(waits) == 2
    assert waits[1] >= 3  # Retry-After honoured
    assert apiserver.count(verb="get", resource="configmaps") == 3


def test_a_server_that_keeps_failing_is_given_up_on(apiserver: ApiServer) -> None:
    apiserver.fail(503, verb="get", resource="configmaps")
    waits: list[float] = []
    with pytest.raises(ConfigSourceError, match="503"):
        read_config_configmap(apiserver.api_client, REF, attempts=3, sleep=waits.append)
    assert apiserver.count(verb="get", resource="configmaps") == 3
    assert len(waits) == 2


def test_an_unreachable_server_is_a_clear_error(apiserver: ApiServer) -> None:
    client = apiserver.new_api_client()
    client.configuration.host = "http://127.0.0.1:9"
    with pytest.raises(ConfigSourceError, match="cannot read the configuration from configmap"):
        read_config_configmap(client, REF, attempts=2, sleep=no_sleep)
