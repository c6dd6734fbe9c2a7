"""check_detector's endpoint rule: http(s) URLs, or <scheme>://<host>:<port> for non-HTTP backends."""

from __future__ import annotations

from typing import Any

import pytest

from dyntoolset.plugin import DetectContext, Detector, Discovered, NoSettings, Service, ToolsetSpec
from dyntoolset.testing import check_detector, make_service

SAMPLE = make_service("broker", "queues", labels={"app": "broker"}, ports=[(9092, "tcp")])


def _detector(endpoint_template: str, kind: str) -> type[Detector[Any]]:
    class Probe(Detector[NoSettings]):
        name = "probe"
        health_check = kind

        def detect(self, service: Service, ctx: DetectContext[NoSettings]) -> Discovered | None:
            if service.labels.get("app") != "broker":
                return None
            host = service.dns_name("cluster.local")
            endpoint = endpoint_template.format(host=host)
            return self.discovered(service, service.ports[0], ctx, endpoint=endpoint)

        def toolsets(self, found: Discovered, settings: NoSettings) -> list[ToolsetSpec]:
            return [ToolsetSpec("kafka/admin", {"clusters": [{"name": "x"}]})]

    return Probe


@pytest.mark.parametrize("kind", ["tcp", "none"])
def test_a_non_http_backend_may_name_its_protocol(kind: str) -> None:
    check_detector(_detector("kafka://{host}:9092", kind), [SAMPLE])


@pytest.mark.parametrize("kind", ["http", "tcp"])
def test_an_http_url_is_always_accepted(kind: str) -> None:
    check_detector(_detector("http://{host}:9092", kind), [SAMPLE])


@pytest.mark.parametrize(
    ("template", "kind", "message"),
    [
        ("kafka://{host}:9092", "http", "must be an http(s) URL without trailing /"),
        ("http://{host}:9092/", "http", "must be an http(s) URL without trailing /"),
        ("kafka://{host}", "tcp", "or <scheme>://<host>:<port> (health_check 'tcp')"),
        ("kafka://{host}:9092/topics", "tcp", "or <scheme>://<host>:<port>"),
        ("{host}:9092", "none", "or <scheme>://<host>:<port> (health_check 'none')"),
    ],
)
def test_other_endpoints_are_violations(template: str, kind: str, message: str) -> None:
    with pytest.raises(AssertionError, match="endpoint") as info:
        check_detector(_detector(template, kind), [SAMPLE])
    assert message in str(info.value)
