"""The kubernaut renderer: V1 ``toolset.json``."""

from __future__ import annotations

import json
import random
from importlib.metadata import entry_points
from typing import Any

import attrs
from render_samples import found, realistic

from dyntoolset.model import Port
from dyntoolset.plugins import validate_extension
from dyntoolset.render import kubernaut
from dyntoolset.render.kubernaut import KubernautRenderer, build_document

V1_KEYS = ["name", "type", "endpoint", "description", "namespace", "metadata"]


def tools(items: Any) -> list[dict[str, Any]]:
    loaded: dict[str, Any] = json.loads(KubernautRenderer().render(items))
    assert list(loaded) == ["tools"]
    result: list[dict[str, Any]] = loaded["tools"]
    return result


def test_registered_through_the_hook_and_entry_point() -> None:
    assert kubernaut.register_renderers() == [KubernautRenderer]
    assert validate_extension("renderer", KubernautRenderer) is None
    names = {ep.name: ep.value for ep in entry_points(group="dyntoolset")}
    assert names["kubernaut"] == "dyntoolset.render.kubernaut"
    assert KubernautRenderer.data_key == "toolset.json"


def test_v1_format() -> None:
    item = found("prometheus", "monitoring", "prometheus", port=9090, port_name="web")
    assert tools([item]) == [
        {
            "name": "prometheus.monitoring",
            "type": "prometheus",
            "endpoint": "http://prometheus.monitoring.svc.cluster.local:9090",
            "description": "prometheus service in monitoring namespace (type: prometheus)",
            "namespace": "monitoring",
            "metadata": {
                "app": "prometheus",
                "detector": "prometheus",
                "health_path": "/",
                "port": "9090",
                "port_name": "web",
                "service": "monitoring/prometheus",
            },
        }
    ]


def test_one_tool_per_service_with_v1_keys_and_distinct_names() -> None:
    result = tools(realistic())
    assert len(result) == len(realistic())
    assert all(list(tool) == V1_KEYS for tool in result)
    names = [tool["name"] for tool in result]
    assert len(set(names)) == len(names)
    assert "inventory.shop-eu" in names
    assert "inventory.shop-us" in names
    assert all(isinstance(v, str) for tool in result for v in tool["metadata"].values())


def test_description_and_custom_type_come_from_discovery() -> None:
    item = found("api", "ns", "custom", type_="billing", port=8080, description="Billing API")
    [tool] = tools([item])
    assert tool["type"] == "billing"
    assert tool["description"] == "Billing API"
    assert tool["metadata"]["detector"] == "custom"


def test_identity_metadata_cannot_be_overridden_by_detector_metadata() -> None:
    item = attrs.evolve(
        found("api", "ns", "custom", port=8080),
        metadata={"detector": "forged", "service": "other/x", "team": "payments"},
        port=None,
    )
    [tool] = tools([item])
    assert tool["metadata"] == {
        "detector": "custom",
        "health_path": "/",
        "service": "ns/api",
        "team": "payments",
    }


def test_duplicates_are_kept_apart() -> None:
    item = found("api", "ns", "custom", port=8080)
    twin = attrs.evolve(item, detector="other")
    names = [tool["name"] for tool in tools([item, twin])]
    assert len(set(names)) == 2
    assert all(name.startswith("api.ns-") for name in names)


def test_deterministic_and_order_independent() -> None:
    items = realistic()
    first = KubernautRenderer().render(items)
    shuffled = list(items)
    random.Random(3).shuffle(shuffled)
    assert KubernautRenderer().render(shuffled) == first
    assert first.endswith("}\n")


def test_empty() -> None:
    assert KubernautRenderer().render([]) == '{\n  "tools": []\n}\n'


def test_text_is_utf8_encodable() -> None:
    item = found("api", "ns", "custom", port=8080, description="caf\u00e9 \ud800")
    text = KubernautRenderer().render([item])
    text.encode("utf-8")
    assert json.loads(text) == build_document([item])
    assert "café \ufffd" in text


def test_port_without_name() -> None:
    item = attrs.evolve(found("api", "ns", "custom", port=8080), port=Port(port=8080))
    [tool] = tools([item])
    assert tool["metadata"]["port"] == "8080"
    assert tool["metadata"]["port_name"] == ""
