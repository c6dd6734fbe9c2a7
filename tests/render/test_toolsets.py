"""dyntoolset.toolsets.http_toolset: the generic HTTP toolset config HolmesGPT 0.45 accepts."""

from __future__ import annotations

import attrs
import pytest
from render_samples import found

from dyntoolset.render.holmesgpt import host_pattern_problem
from dyntoolset.toolsets import host_pattern, http_toolset


@pytest.mark.parametrize(
    ("endpoint", "pattern"),
    [
        ("http://svc.ns.svc.cluster.local:8080", "http://svc.ns.svc.cluster.local:8080"),
        ("https://svc.ns.svc.cluster.local", "https://svc.ns.svc.cluster.local:443"),
        ("http://svc.ns.svc.cluster.local", "http://svc.ns.svc.cluster.local:80"),
        ("HTTP://SVC.ns.svc:81/api", "http://svc.ns.svc:81"),
        ("http://user:pw@svc:81", "http://svc:81"),
        ("http://[fd00::1]:8080", "http://[fd00::1]:8080"),
        ("ftp://svc:21", None),
        ("http://:80", None),
        ("http://svc:99999", None),
        ("not a url", None),
    ],
)
def test_host_pattern(endpoint: str, pattern: str | None) -> None:
    assert host_pattern(endpoint) == pattern
    if pattern is not None:
        assert host_pattern_problem(pattern) is None


def test_config_has_only_keys_holmesgpt_defines() -> None:
    item = found("api", "ns", "custom", type_="billing", port=8080)
    spec = http_toolset(item)
    assert spec.kind == "http"
    assert spec.config == {
        "endpoints": [
            {
                "hosts": ["http://api.ns.svc.cluster.local:8080"],
                "paths": ["*"],
                "methods": ["GET"],
            }
        ]
    }
    assert spec.description == "billing service api in namespace ns"
    assert "http://api.ns.svc.cluster.local:8080" in spec.llm_instructions
    assert "GET" in spec.llm_instructions


def test_endpoint_path_limits_the_paths() -> None:
    item = found("api", "ns", "custom", port=8080, endpoint="http://api.ns.svc:8080/v1/")
    [endpoint] = http_toolset(item).config["endpoints"]
    assert endpoint["paths"] == ["/v1", "/v1/*"]


def test_jaeger_gets_its_api() -> None:
    item = found("jaeger-query", "tracing", "jaeger", port=16686)
    spec = http_toolset(item)
    assert spec.config["endpoints"][0]["paths"] == ["/api/*"]
    for path in ("/api/services", "/api/traces", "/api/dependencies"):
        assert path in spec.llm_instructions


def test_unusable_endpoint_gives_no_endpoints() -> None:
    item = attrs.evolve(found("api", "ns", "custom", port=8080), endpoint="grpc://api:9000")
    assert http_toolset(item).config == {"endpoints": []}
