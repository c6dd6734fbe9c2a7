"""The operator's overrides.yaml: never changed, applied to the HolmesGPT document."""

from __future__ import annotations

import json

import pytest
import yaml

from dyntoolset import Engine
from dyntoolset.config import load_config
from dyntoolset.configmap import OVERRIDES_KEY
from dyntoolset.errors import InvalidConfigMapError
from dyntoolset.testing import make_plugin_set, make_service

T0 = "2026-01-01T00:00:00Z"
PROM = make_service(
    "prometheus-server",
    "monitoring",
    labels={"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"},
    ports=[(80, "http")],
)
GRAFANA = make_service(
    "grafana", "monitoring", labels={"app.kubernetes.io/name": "grafana"}, ports=[(80, "http-web")]
)


@pytest.fixture(scope="module")
def engine() -> Engine:
    plugins = make_plugin_set()
    return Engine(load_config(None, plugins), plugins)


def with_overrides(engine: Engine, services, overrides: str):
    existing = engine.cycle(services, now=T0).merge.configmap
    existing["data"][OVERRIDES_KEY] = overrides
    return engine.cycle(services, existing=existing, now=T0).merge


def toolsets(merge) -> dict:
    return yaml.safe_load(merge.configmap["data"]["custom_toolset.yaml"])["toolsets"]


def test_overrides_merge_into_generated_toolsets_and_win(engine):
    overrides = (
        "toolsets:\n"
        "  grafana/dashboards:\n"
        "    config: {api_key: '{{ env.GRAFANA_TOKEN }}'}\n"
        "  prometheus/metrics: null\n"
        "  runbooks:\n"
        "    type: http\n"
        "    enabled: true\n"
        "    description: team runbooks\n"
        "    config: {endpoints: [{hosts: [runbooks.example.com], paths: ['*'], methods: [GET]}]}\n"
    )
    merge = with_overrides(engine, [PROM, GRAFANA], overrides)
    result = toolsets(merge)
    assert merge.problems == ()
    assert "prometheus/metrics" not in result  # removed by null
    assert result["grafana/dashboards"]["config"] == {
        "api_url": "http://grafana.monitoring.svc.cluster.local:80",
        "api_key": "{{ env.GRAFANA_TOKEN }}",
    }
    assert result["runbooks"]["description"] == "team runbooks"
    assert merge.configmap["data"][OVERRIDES_KEY] == overrides  # never changed
    assert json.loads(merge.configmap["data"]["toolset.json"])["tools"]  # kubernaut: untouched


def test_overrides_replace_the_placeholder_when_nothing_was_found(engine):
    merge = with_overrides(engine, [], "toolsets:\n  mine: {type: http, enabled: true}\n")
    assert list(toolsets(merge)) == ["mine"]


def test_removing_everything_keeps_a_loadable_document(engine):
    merge = with_overrides(engine, [PROM], "toolsets:\n  prometheus/metrics: null\n")
    assert list(toolsets(merge)) == ["dyntoolset/none"]


def test_applying_the_same_overrides_again_changes_nothing(engine):
    services = [PROM, GRAFANA]
    existing = engine.cycle(services, now=T0).merge.configmap
    existing["data"][OVERRIDES_KEY] = "toolsets:\n  grafana/dashboards: {enabled: false}\n"
    first = engine.cycle(services, existing=existing, now=T0).merge
    second = engine.cycle(services, existing=first.configmap, now="2026-02-02T00:00:00Z").merge
    assert first.changed and not second.changed and second.drifted == ()


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ("toolsets: [\n", "overrides.yaml: $: invalid YAML at line 2, column 1"),
        ("- a\n", "overrides.yaml: $: expected a mapping, got list"),
        (
            "toolsets: 5\n",
            "overrides.yaml: $.toolsets: expected a mapping, got int (not applied to custom_toolset.yaml)",
        ),
        (
            "toolsets: {grafana/dashboards: 5}\n",
            "overrides.yaml: $.toolsets.grafana/dashboards: expected a mapping or null",
        ),
        (
            "toolsets:\n  a: {enabled: true}\n  a: {enabled: false}\n",
            "overrides.yaml: $: invalid YAML at line 3, column 3: found duplicate key 'a'",
        ),
        (
            "toolsets: " + "[" * 3000 + "]" * 3000 + "\n",
            "overrides.yaml: $: invalid YAML at line 1, column ",
        ),
    ],
)
def test_bad_overrides_are_reported_and_the_rest_still_written(engine, overrides, problem):
    merge = with_overrides(engine, [PROM, GRAFANA], overrides)
    assert len(merge.problems) == 1 and merge.problems[0].startswith(problem)
    assert set(toolsets(merge)) == {"prometheus/metrics", "grafana/dashboards"}
    assert merge.configmap["data"][OVERRIDES_KEY] == overrides


def test_other_top_level_keys_are_left_to_other_consumers(engine):
    merge = with_overrides(engine, [PROM], "kubernaut: {anything: 1}\n")
    assert merge.problems == () and set(toolsets(merge)) == {"prometheus/metrics"}


def test_an_overrides_yaml_that_is_not_a_string_is_refused_not_a_crash(engine):
    existing = engine.cycle([PROM], now=T0).merge.configmap
    existing["data"][OVERRIDES_KEY] = 5  # hand-written YAML: overrides.yaml: 5
    with pytest.raises(InvalidConfigMapError) as info:
        engine.cycle([PROM], existing=existing, now=T0)
    assert info.value.problems == ("$.data['overrides.yaml']: expected a string, got 5",)
