"""What a new plugin author and a new embedder ran into (issue 8, item 8), each pinned."""

from __future__ import annotations

import attrs
import pytest

import dyntoolset
from dyntoolset import DyntoolsetError, Engine, SnapshotError, load_config, service_from_object
from dyntoolset.plugin import DetectContext, Detector, Discovered, Service, ToolsetSpec
from dyntoolset.testing import make_plugin_set, make_service, run_detector


@attrs.frozen
class QueueSettings:
    vhost: str = "/"
    password_env: str = ""


class RabbitDetector(Detector[QueueSettings]):
    """A newcomer's detector: a kind the built-in renderers have no table entry for."""

    name = "rabbit"
    description = "RabbitMQ management API"
    Settings = QueueSettings

    def detect(self, service: Service, ctx: DetectContext[QueueSettings]) -> Discovered | None:
        if service.labels.get("app.kubernetes.io/name") != "rabbitmq":
            return None
        port = service.port_named("management")
        return None if port is None else self.discovered(service, port, ctx)

    def toolsets(self, found: Discovered, settings: QueueSettings) -> list[ToolsetSpec]:
        cluster = {"id": found.key, "management_url": found.endpoint}
        if settings.password_env:
            cluster["password"] = "{{ env.%s }}" % settings.password_env  # noqa: UP031
        return [ToolsetSpec("rabbitmq/core", {"clusters": [cluster]}, combine_key="clusters")]


RABBIT = make_service(
    "mq",
    "queues",
    labels={"app.kubernetes.io/name": "rabbitmq"},
    ports=[(5672, "amqp"), (15672, "management")],
)


def test_a_plugin_emits_any_toolset_kind_with_settings_from_its_configuration(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("detectors:\n  rabbit:\n    config: {password_env: RABBIT_PASSWORD}\n")
    engine = Engine.load(config, make_plugin_set(RabbitDetector))
    cycle = engine.cycle([RABBIT], formats=["holmesgpt", "kubernaut"], configmap=False)
    holmes = cycle.documents["custom_toolset.yaml"]
    assert "rabbitmq/core:" in holmes
    assert "password: '{{ env.RABBIT_PASSWORD }}'" in holmes
    # Settings never leak into the published metadata of toolset.json.
    assert "RABBIT_PASSWORD" not in cycle.documents["toolset.json"]


def test_run_detector_passes_the_settings_to_toolsets():
    found = run_detector(RabbitDetector, RABBIT, {"password_env": "P"})
    assert found is not None
    (spec,) = found.toolsets
    assert spec.config["clusters"][0]["password"] == "{{ env.P }}"


def test_make_service_with_cluster_ip_none_is_headless():
    assert make_service("a", cluster_ip=None).is_headless
    assert make_service("a", cluster_ip="None").is_headless
    assert not make_service("a").is_headless


def test_make_plugin_set_without_builtin_detectors_keeps_the_renderers():
    plugins = make_plugin_set(RabbitDetector, builtin_detectors=False)
    assert set(plugins.detectors) == {"rabbit"}
    assert set(plugins.renderers) == {"holmesgpt", "kubernaut"}
    cycle = Engine(load_config(None, plugins), plugins).cycle([RABBIT], configmap=False)
    assert set(cycle.documents) == {"custom_toolset.yaml", "toolset.json"}


def test_service_from_object_refuses_another_kind():
    with pytest.raises(SnapshotError) as info:
        service_from_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    assert str(info.value) == "expected a v1 Service, got 'ConfigMap' of apiVersion 'v1'"
    with pytest.raises(SnapshotError, match="apiVersion 'v2'"):
        service_from_object({"apiVersion": "v2", "kind": "Service", "metadata": {"name": "c"}})
    # Items of a ServiceList carry no kind: still Services.
    assert service_from_object({"metadata": {"name": "c"}}).name == "c"


def test_snapshot_and_manifest_types_are_exported_and_are_dyntoolset_errors():
    assert issubclass(SnapshotError, DyntoolsetError)
    assert issubclass(SnapshotError, ValueError)
    assert dyntoolset.ManifestReport is dyntoolset.read_manifests([]).__class__
    assert {"ManifestObject", "ManifestReport", "read_manifests"} <= set(dyntoolset.__all__)


def _refuse_no(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value == "no":
        raise ValueError(f"{attribute.name} must not be 'no'")


@attrs.frozen
class TwoRuleSettings:
    count: int = 1
    label: str = attrs.field(default="", validator=_refuse_no)
    other: str = attrs.field(default="", validator=_refuse_no)


class TwoRuleDetector(Detector[TwoRuleSettings]):
    name = "two-rules"
    Settings = TwoRuleSettings

    def detect(self, service: Service, ctx: DetectContext[TwoRuleSettings]) -> Discovered | None:
        return None


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            "{count: many, label: 'no'}",
            [
                "$.detectors.two-rules.config.count: expected int, got 'many'",
                "$.detectors.two-rules.config.label: label must not be 'no'",
            ],
        ),
        (
            "{count: many, label: 'no', other: 'no'}",
            [
                "$.detectors.two-rules.config.count: expected int, got 'many'",
                "$.detectors.two-rules.config.label: label must not be 'no'",
                "$.detectors.two-rules.config.other: other must not be 'no'",
            ],
        ),
    ],
)
def test_every_bad_field_of_a_plugin_settings_block_is_reported(block, expected):
    from dyntoolset import ConfigError, load_config_text

    with pytest.raises(ConfigError) as info:
        load_config_text(
            f"detectors: {{two-rules: {{config: {block}}}}}", "t", make_plugin_set(TwoRuleDetector)
        )
    assert [str(p) for p in info.value.problems] == expected


def test_fixture_documents_reads_every_yaml_file_in_name_order(tmp_path):
    from dyntoolset.testing import fixture_documents

    (tmp_path / "b-chart.yaml").write_text(
        "kind: Service\nmetadata: {name: one}\nexpect: {none: x}\n---\n"
        "kind: Service\nmetadata: {name: two, namespace: ops}\nexpect: {none: y}\n"
    )
    (tmp_path / "a-operator.yaml").write_text(
        "---\nkind: Service\nmetadata: {name: op, namespace: o}\n"
    )
    (tmp_path / "notes.txt").write_text("not a fixture")
    found = fixture_documents(tmp_path)
    assert [key for key, _ in found] == [
        "a-operator:o/op",
        "b-chart:default/one",
        "b-chart:ops/two",
    ]
    assert found[1][1]["expect"] == {"none": "x"}
