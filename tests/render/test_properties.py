"""Property tests: whatever text the cluster holds, the documents keep their shape.

Service names, namespaces, labels, annotations and descriptions are drawn from
arbitrary text plus known troublemakers (YAML syntax, tags, anchors, document
markers, HolmesGPT env placeholders, lone surrogates, 10 KB values). Endpoints
stay valid URLs, as the detectors build them from the Service's DNS name.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from render_samples import HOSTILE_TEXT

from dyntoolset.model import Discovered, Port, Service, ToolsetSpec
from dyntoolset.render import holmesgpt, kubernaut
from dyntoolset.toolsets import http_toolset

NASTY = HOSTILE_TEXT

text = st.one_of(st.sampled_from(NASTY), st.text(max_size=40)) | st.builds(
    lambda a, b: a + b, st.sampled_from(NASTY), st.text(max_size=20)
)

KINDS = ("prometheus/metrics", "grafana/dashboards", "elasticsearch/data")
URL_KEY = {"prometheus/metrics": "prometheus_url"}


@st.composite
def discovered_sets(draw: st.DrawFn) -> list[Discovered]:
    """1-5 Services, each a built-in toolset (one of KINDS) plus an HTTP toolset."""
    count = draw(st.integers(min_value=1, max_value=5))
    items = []
    for i in range(count):
        labels = draw(st.dictionaries(text, text, max_size=3))
        annotations = draw(st.dictionaries(text, text, max_size=3))
        service = Service(
            name=draw(text),
            namespace=draw(text),
            labels=labels,
            annotations=annotations,
            ports=(Port(port=8080, name=draw(text)),),
        )
        endpoint = f"http://svc-{i}.ns.svc.cluster.local:8080"
        kind = KINDS[i % len(KINDS)]
        base = Discovered(
            service=service,
            detector=draw(st.sampled_from(["prometheus", "custom", "grafana"])),
            type=draw(text),
            endpoint=endpoint,
            health_path=draw(text),
            port=service.ports[0],
            description=draw(text),
            metadata={**labels, **annotations},
        )
        builtin = ToolsetSpec(
            kind=kind,
            config={URL_KEY.get(kind, "api_url"): endpoint},
            description=draw(text),
            llm_instructions=draw(text),
        )
        http = http_toolset(base)
        http = ToolsetSpec(
            kind=http.kind,
            config=http.config,
            description=http.description + draw(text),
            llm_instructions=draw(text) + http.llm_instructions,
        )
        items.append(attrs.evolve(base, toolsets=(builtin, http)))
    return items


def walk(value: Any, path: str = "") -> Any:
    """Yield (path, key-or-None, value) for every node."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield path, k, v
            yield from walk(v, f"{path}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}/{i}")


HOLMES_ENV = re.compile(r"{{\s*env\.([^}]*)\s*}}")
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(discovered_sets())
def test_holmesgpt_structure_and_round_trip(items: list[Discovered]) -> None:
    output = holmesgpt.HolmesGPTRenderer().render(items)
    data = holmesgpt.build_document(items)

    assert yaml.safe_load(output) == data  # exact data, nothing parsed differently
    assert holmesgpt.HolmesGPTRenderer().render(list(reversed(items))) == output
    output.encode("utf-8")

    toolsets = data["toolsets"]
    kinds = [KINDS[i % len(KINDS)] for i in range(len(items))]
    # One entry per built-in kind used, one HTTP toolset per Service: always.
    assert len(toolsets) == len(set(kinds)) + len(items)
    for kind in set(kinds):
        entry = toolsets[kind]
        assert set(entry) == {"enabled", "config"}
        n = kinds.count(kind)
        if n == 1:
            assert set(entry["config"]) == {URL_KEY.get(kind, "api_url")}
        else:
            instances = entry["config"]["instances"]
            assert len(instances) == n
            assert len({i["name"] for i in instances}) == n
    http_names = [name for name in toolsets if name not in KINDS]
    assert len(http_names) == len(items)
    tool_names = {n.replace("/", "_").replace("-", "_") + "_request" for n in http_names}
    assert len(tool_names) == len(items)
    assert all(re.fullmatch(r"[a-z0-9_]{1,64}", t) for t in tool_names)
    for name in http_names:
        entry = toolsets[name]
        assert set(entry) == {"type", "enabled", "description", "llm_instructions", "config"}
        assert entry["type"] == "http"
        assert entry["enabled"] is True
        [endpoint] = entry["config"]["endpoints"]
        assert endpoint["methods"] == ["GET"]
        assert len(endpoint["hosts"]) == 1
    for _, key, value in walk(data):
        # benedict (HolmesGPT's file reader) rejects a whole file over one dotted key.
        assert key is None or "." not in key
        if isinstance(value, str):
            assert not HOLMES_ENV.search(value)


@PROPERTY
@given(discovered_sets())
def test_kubernaut_structure_and_round_trip(items: list[Discovered]) -> None:
    output = kubernaut.KubernautRenderer().render(items)
    data = kubernaut.build_document(items)

    assert json.loads(output) == data
    assert kubernaut.KubernautRenderer().render(list(reversed(items))) == output
    output.encode("utf-8")

    tools = data["tools"]
    assert len(tools) == len(items)
    assert len({tool["name"] for tool in tools}) == len(items)
    for tool in tools:
        assert list(tool) == ["name", "type", "endpoint", "description", "namespace", "metadata"]
        assert all(isinstance(v, str) for v in tool["metadata"].values())
        assert {"detector", "service", "health_path", "port", "port_name"} <= set(tool["metadata"])


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@settings(max_examples=40, deadline=None)
@given(text, text)
def test_plain_text_survives_verbatim(description: str, annotation: str) -> None:
    """Text without placeholders or lone surrogates reaches the agent unchanged.

    ``annotation`` is a Service annotation a detector copied into its
    metadata (the way cluster text reaches ``toolset.json``): Kubernaut gets
    it verbatim. HolmesGPT's document carries no metadata, so the annotation
    left on the Service changes nothing there.
    """
    if HOLMES_ENV.search(description) or LONE_SURROGATE.search(description):
        description = "plain"
    if LONE_SURROGATE.search(annotation):
        annotation = "plain"
    service = Service(
        name="api", namespace="ns", annotations={"note": annotation}, ports=(Port(port=80),)
    )
    found = Discovered(
        service=service,
        detector="custom",
        type="custom",
        endpoint="http://api.ns.svc.cluster.local:80",
        health_path="/",
        description=description,
        metadata={"note": annotation},
    )
    found = attrs.evolve(found, toolsets=(http_toolset(found),))
    holmes_text = holmesgpt.HolmesGPTRenderer().render([found])
    [entry] = yaml.safe_load(holmes_text)["toolsets"].values()
    assert entry["description"] == f"{description or 'custom service'} api in namespace ns"
    unannotated = attrs.evolve(found, service=attrs.evolve(service, annotations={}))
    assert holmesgpt.HolmesGPTRenderer().render([unannotated]) == holmes_text
    [tool] = json.loads(kubernaut.KubernautRenderer().render([found]))["tools"]
    assert tool["description"] == (description or "api service in ns namespace (type: custom)")
    assert tool["metadata"]["note"] == annotation
