"""The holmesgpt renderer's document, without HolmesGPT (see test_holmesgpt_loads.py for that)."""

from __future__ import annotations

import random
from importlib.metadata import entry_points
from typing import Any

import attrs
import pytest
import yaml
from render_samples import found, realistic

from dyntoolset.model import ToolsetSpec
from dyntoolset.plugins import validate_extension
from dyntoolset.render import holmesgpt
from dyntoolset.render.holmesgpt import (
    PLACEHOLDER_NAME,
    HolmesGPTRenderer,
    build_document,
    host_pattern_problem,
)

HTTP_KEYS = {"type", "enabled", "description", "llm_instructions", "config"}


def render(items: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(HolmesGPTRenderer().render(items))
    return loaded["toolsets"]


def prometheus(name: str, namespace: str) -> Any:
    return found(
        name,
        namespace,
        "prometheus",
        port=9090,
        kinds={"prometheus/metrics": {"prometheus_url": "{url}"}},
    )


def custom(name: str, namespace: str, type_: str = "billing") -> Any:
    return found(name, namespace, "custom", type_=type_, port=8080, http=True)


def test_registered_through_the_hook_and_entry_point() -> None:
    assert holmesgpt.register_renderers() == [HolmesGPTRenderer]
    assert validate_extension("renderer", HolmesGPTRenderer) is None
    names = {ep.name: ep.value for ep in entry_points(group="dyntoolset")}
    assert names["holmesgpt"] == "dyntoolset.render.holmesgpt"
    assert HolmesGPTRenderer.data_key == "custom_toolset.yaml"


def test_realistic_document() -> None:
    toolsets = render(realistic())

    assert list(toolsets) == [
        "prometheus/metrics",
        "grafana/dashboards",
        "grafana/loki",
        "grafana/tempo",
        "elasticsearch/cluster",
        "elasticsearch/data",
        "billing/payments/billing-api",
        "inventory/shop-eu/inventory",
        "inventory/shop-us/inventory",
        "jaeger/tracing/jaeger-query",
    ]
    assert toolsets["prometheus/metrics"] == {
        "enabled": True,
        "config": {
            "instances": [
                {
                    "name": "monitoring/kube-prometheus-stack-prometheus",
                    "prometheus_url": "http://kube-prometheus-stack-prometheus.monitoring"
                    ".svc.cluster.local:9090",
                },
                {
                    "name": "team-a/prometheus",
                    "prometheus_url": "http://prometheus.team-a.svc.cluster.local:9090",
                },
            ]
        },
    }
    # A single server keeps HolmesGPT's ordinary flat config; the secret stays a placeholder.
    assert toolsets["grafana/dashboards"] == {
        "enabled": True,
        "config": {
            "api_url": "http://kube-prometheus-stack-grafana.monitoring.svc.cluster.local:80",
            "api_key": "{{ env.GRAFANA_API_KEY }}",
        },
    }
    jaeger = toolsets["jaeger/tracing/jaeger-query"]
    assert set(jaeger) == HTTP_KEYS
    assert jaeger["type"] == "http"
    assert jaeger["enabled"] is True
    assert jaeger["config"] == {
        "endpoints": [
            {
                "hosts": ["http://jaeger-query.tracing.svc.cluster.local:16686"],
                "paths": ["/api/*"],
                "methods": ["GET"],
            }
        ]
    }
    assert "/api/traces" in jaeger["llm_instructions"]
    assert "http://jaeger-query.tracing.svc.cluster.local:16686" in jaeger["llm_instructions"]


def test_built_in_entries_carry_no_text_of_their_own() -> None:
    """description/llm_instructions on a built-in would replace HolmesGPT's own
    instructions for that toolset (Toolset.override_with), so they are not emitted."""
    item = found(
        "prom",
        "m",
        "prometheus",
        port=9090,
        kinds={"prometheus/metrics": {"prometheus_url": "{url}"}},
    )
    spec = attrs.evolve(item.toolsets[0], description="d", llm_instructions="i")
    assert render([attrs.evolve(item, toolsets=(spec,))])["prometheus/metrics"] == {
        "enabled": True,
        "config": {"prometheus_url": "http://prom.m.svc.cluster.local:9090"},
    }


def test_same_service_name_in_two_namespaces_gets_distinct_names() -> None:
    toolsets = render(
        [
            prometheus("prometheus", "a"),
            prometheus("prometheus", "b"),
            custom("api", "a"),
            custom("api", "b"),
        ]
    )
    names = [i["name"] for i in toolsets["prometheus/metrics"]["config"]["instances"]]
    assert names == ["a/prometheus", "b/prometheus"]
    assert "billing/a/api" in toolsets
    assert "billing/b/api" in toolsets


def test_output_is_deterministic_and_independent_of_input_order() -> None:
    items = realistic()
    first = HolmesGPTRenderer().render(items)
    assert HolmesGPTRenderer().render(items) == first
    shuffled = list(items)
    random.Random(7).shuffle(shuffled)
    assert HolmesGPTRenderer().render(shuffled) == first


def test_nothing_discovered_gives_a_disabled_placeholder() -> None:
    """HolmesGPT 0.45 raises on an empty ``toolsets:`` mapping."""
    assert render([]) == {
        PLACEHOLDER_NAME: {
            "type": "http",
            "enabled": False,
            "description": "dyntoolset has not discovered any observability backend yet",
            "config": {"endpoints": []},
        }
    }


def test_http_tool_names_stay_unique_when_dashes_collide() -> None:
    """HolmesGPT names the HTTP tool after the toolset with '/' and '-' turned into
    '_': namespace a-b/service c and namespace a/service b-c would share a tool name."""
    toolsets = render([custom("c", "a-b"), custom("b-c", "a")])
    names = [n for n in toolsets if n.startswith("billing/")]
    assert len(names) == 2
    tools = {n.replace("/", "_").replace("-", "_") for n in names}
    assert len(tools) == 2
    assert all(
        len(n) == len("billing/a-b/c") + 9 or len(n) == len("billing/a/b-c") + 9 for n in names
    )


def test_long_names_are_shortened_with_a_hash() -> None:
    long_ns = "n" * 63
    toolsets = render([custom("s" * 63, long_ns), custom("s" * 63, long_ns[:-1] + "m")])
    names = [n for n in toolsets if n.startswith("billing/")]
    assert len(set(names)) == 2
    for name in names:
        assert len(name.replace("/", "_") + "_request") <= 64
        assert name.startswith("billing/nnnnnnnnnnnnnnnnn")
        assert "/sssssssssssssssss" in name
    [alone] = render([custom("s" * 63, long_ns)])
    assert alone in names  # stable: does not depend on the other Service


def test_odd_type_names_are_sanitised() -> None:
    toolsets = render([custom("api", "ns", type_="My Type/With.Dots")])
    [name] = toolsets
    assert name.startswith("my-type-with-dots/ns/api")
    assert "." not in name


def test_unknown_kinds_and_unloadable_configs_are_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    item = found("x", "ns", "custom", port=8080)
    specs = (
        ToolsetSpec(kind="Datadog Logs", config={"api_url": "http://x"}),
        ToolsetSpec(kind="datadog.logs/x", config={"api_url": "http://x"}),
        ToolsetSpec(kind="solo/", config={"api_url": "http://x"}),
        ToolsetSpec(kind="-solo", config={"api_url": "http://x"}),
        ToolsetSpec(kind=PLACEHOLDER_NAME, config={}),
        ToolsetSpec(kind="rabbitmq/core", config={"clusters": "x"}, combine_key="clusters"),
        ToolsetSpec(kind="http", config={"endpoints": [{"hosts": ["x"]}], "auht": {}}),
        ToolsetSpec(kind="http", config={"endpoints": [{"hosts": ["x"], "pahts": ["/"]}]}),
        ToolsetSpec(kind="http", config={"endpoints": [{"hosts": ["x"], "auth": {"tokne": "t"}}]}),
        ToolsetSpec(kind="prometheus/metrics", config={}),
        ToolsetSpec(kind="prometheus/metrics", config={"prometheus_url": "http://x", "a.b": "1"}),
        ToolsetSpec(kind="prometheus/metrics", config={"prometheus_url": "http://x", "name": "n"}),
        ToolsetSpec(kind="http", config={"endpoints": []}),
        ToolsetSpec(kind="http", config={"endpoints": [{"hosts": ["ftp://x"]}]}),
        ToolsetSpec(kind="http", config={"endpoints": [{"hosts": ["x:0"]}]}),
        ToolsetSpec(kind="http", config={"endpoints": [{"hosts": ["x"], "methods": ["TRACE"]}]}),
        ToolsetSpec(kind="grafana/loki", config={"api_url": object()}),
    )
    assert render([attrs.evolve(item, toolsets=specs)]) == render([])
    assert len([r for r in caplog.records if "leaving out" in r.getMessage()]) == len(specs)


def test_a_one_word_toolset_name_is_rendered() -> None:
    """HolmesGPT 0.45 names some toolsets with one word (``slab``, ``victorialogs``)."""
    item = found("wiki", "docs", "custom", port=8080)
    spec = ToolsetSpec(kind="slab", config={"api_key": "{{ env.SLAB_KEY }}"})
    toolsets = render([attrs.evolve(item, toolsets=(spec,))])
    assert toolsets == {"slab": {"enabled": True, "config": {"api_key": "{{ env.SLAB_KEY }}"}}}


def test_env_placeholders_from_the_cluster_are_neutralised() -> None:
    """HolmesGPT expands {{ env.X }} in every string of an entry: a Service annotation
    must not be able to copy the agent's secrets into a prompt or a URL."""
    sneaky = "see {{ env.OPENAI_API_KEY }} and {{{{env.X}}}}"
    item = found(
        "api",
        "ns",
        "custom",
        port=8080,
        http=True,
        description=sneaky,
        endpoint="http://api.ns.svc.cluster.local:8080/{{env.AWS_SECRET_ACCESS_KEY}}",
        kinds={"grafana/loki": {"api_url": "{url}", "api_key": "x{{ env.K }}"}},
    )
    text = HolmesGPTRenderer().render([item])
    assert "{{" not in text
    # Only a whole placeholder under a secret key survives (see test_realistic_document).


@pytest.mark.parametrize(
    ("pattern", "ok"),
    [
        ("http://svc.ns.svc.cluster.local:9090", True),
        ("https://svc.ns.svc:443", True),
        ("svc.ns.svc", True),
        ("*.example.com", True),
        ("https://*.example.com:*", True),
        ("[fd00::1]:8080", True),
        ("http://[fd00::1]:8080", True),
        ("ftp://x", False),
        ("x:0", False),
        ("x:65536", False),
        ("x:", False),
        ("a*.example.com", False),
        ("", False),
        ("[fd00::1", False),
    ],
)
def test_host_patterns_follow_holmesgpts_rules(pattern: str, ok: bool) -> None:
    assert (host_pattern_problem(pattern) is None) is ok


def test_build_document_is_what_gets_serialised() -> None:
    items = realistic()
    assert yaml.safe_load(HolmesGPTRenderer().render(items)) == build_document(items)


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        (
            {"config": {"headers": {"X-Scope.OrgID": "team-a"}}},
            "$.toolsets.grafana/loki.config.headers",
        ),
        (
            {"config": {"instances": [{"name": "a", "x.y": 1}]}},
            "$.toolsets.grafana/loki.config.instances[0]",
        ),
    ],
)
def test_overrides_with_a_dotted_key_are_refused(entry: dict[str, Any], where: str) -> None:
    """HolmesGPT reads the file with benedict, which refuses the *whole file* over one
    key containing '.': applied, such an override would cost the agent every toolset.
    It is refused instead (the engine then writes the document without overrides and
    reports the problem)."""
    document = HolmesGPTRenderer().render(realistic())
    with pytest.raises(ValueError, match=r"contains '\.'") as raised:
        HolmesGPTRenderer().apply_overrides(document, {"toolsets": {"grafana/loki": entry}})
    assert str(raised.value).startswith(where)


def test_an_override_toolset_name_with_a_dot_is_refused() -> None:
    document = HolmesGPTRenderer().render(realistic())
    with pytest.raises(ValueError, match=r"^\$\.toolsets: key 'my\.toolset' contains '\.'"):
        HolmesGPTRenderer().apply_overrides(
            document, {"toolsets": {"my.toolset": {"type": "http", "enabled": True}}}
        )


def test_overrides_without_dots_still_apply() -> None:
    document = HolmesGPTRenderer().render(realistic())
    merged = yaml.safe_load(
        HolmesGPTRenderer().apply_overrides(
            document,
            {"toolsets": {"grafana/loki": {"config": {"headers": {"X-Scope-OrgID": "team-a"}}}}},
        )
    )
    assert merged["toolsets"]["grafana/loki"]["config"]["headers"] == {"X-Scope-OrgID": "team-a"}


def rabbit(name: str, namespace: str, *, combine: bool = True) -> Any:
    item = found(name, namespace, "rabbitmq", port=15672)
    spec = ToolsetSpec(
        kind="rabbitmq/core",
        config={
            "clusters": [{"id": f"{namespace}/{name}", "management_url": item.endpoint}],
            "request_timeout_seconds": 30,
        },
        combine_key="clusters" if combine else "",
    )
    return attrs.evolve(item, toolsets=(spec,))


def test_a_plugin_kind_is_emitted_under_its_own_name() -> None:
    toolsets = render([rabbit("rabbit", "mq")])
    assert toolsets["rabbitmq/core"] == {
        "enabled": True,
        "config": {
            "clusters": [
                {"id": "mq/rabbit", "management_url": "http://rabbit.mq.svc.cluster.local:15672"}
            ],
            "request_timeout_seconds": 30,
        },
    }


def test_several_services_of_a_plugin_kind_join_under_its_combine_key() -> None:
    toolsets = render([rabbit("b", "mq"), rabbit("a", "mq"), rabbit("c", "other")])
    config = toolsets["rabbitmq/core"]["config"]
    assert [c["id"] for c in config["clusters"]] == ["mq/a", "mq/b", "other/c"]
    assert config["request_timeout_seconds"] == 30


def test_without_a_combine_key_the_first_service_wins_and_the_rest_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    toolsets = render([rabbit("b", "mq", combine=False), rabbit("a", "mq", combine=False)])
    assert [c["id"] for c in toolsets["rabbitmq/core"]["config"]["clusters"]] == ["mq/a"]
    (record,) = [r for r in caplog.records if "leaving out the rabbitmq/core" in r.getMessage()]
    assert "mq/b" in record.getMessage() and "mq/a has it" in record.getMessage()


def test_a_flat_url_override_of_a_multi_instance_toolset_is_a_problem() -> None:
    document = HolmesGPTRenderer().render([prometheus("a", "x"), prometheus("b", "y")])
    with pytest.raises(ValueError) as info:
        HolmesGPTRenderer().apply_overrides(
            document,
            {"toolsets": {"prometheus/metrics": {"config": {"prometheus_url": "http://p"}}}},
        )
    assert str(info.value).startswith(
        "$.toolsets['prometheus/metrics'].config.prometheus_url: the generated toolset has "
        "several instances"
    )
    # A shared setting beside the instances is fine, and so is a flat URL for one server.
    shared = {"toolsets": {"prometheus/metrics": {"config": {"timeout_seconds": 60}}}}
    merged = yaml.safe_load(HolmesGPTRenderer().apply_overrides(document, shared))
    assert merged["toolsets"]["prometheus/metrics"]["config"]["timeout_seconds"] == 60
    single = HolmesGPTRenderer().render([prometheus("a", "x")])
    flat = {"toolsets": {"prometheus/metrics": {"config": {"prometheus_url": "http://p"}}}}
    merged = yaml.safe_load(HolmesGPTRenderer().apply_overrides(single, flat))
    assert merged["toolsets"]["prometheus/metrics"]["config"]["prometheus_url"] == "http://p"
