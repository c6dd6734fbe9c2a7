"""The helpers plugin authors build detectors from."""

from __future__ import annotations

import pytest

from dyntoolset.detector import DetectContext, choose_port, scheme_for
from dyntoolset.model import Port
from dyntoolset.testing import make_service


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ([], None),
        ([Port(6831, "agent", "UDP"), Port(16686, "ui")], 16686),  # UDP first, skipped
        ([Port(9090, "http", "UDP")], None),  # the named port is not TCP
        ([Port(8080, "x"), Port(9090, "y")], 9090),  # well-known number
        ([Port(8080, "x"), Port(9091, "web")], 9091),  # a named port beats a number
        ([Port(1234, "x"), Port(5678, "y")], 1234),  # the first TCP port
    ],
)
def test_choose_port(ports, expected):
    chosen = choose_port(make_service("s", ports=ports), ("web", "http"), (9090,))
    assert (chosen.port if chosen else None) == expected


@pytest.mark.parametrize(
    ("port", "scheme"),
    [
        (Port(80, "http"), "http"),
        (Port(8080, "https"), "https"),
        (Port(8080, "web-https"), "https"),
        (Port(8080, "tls-web"), "https"),
        (Port(8080, "web", app_protocol="https"), "https"),
        (Port(443), "https"),
        (Port(8443, "x"), "https"),
        (Port(9200, "httpsx"), "http"),
    ],
)
def test_scheme_for(port, scheme):
    assert scheme_for(port) == scheme


def test_context_builds_cluster_dns_endpoints():
    ctx = DetectContext(settings=None, cluster_domain="corp.internal")
    svc = make_service("grafana", "obs")
    assert ctx.endpoint(svc, Port(3000, "service")) == "http://grafana.obs.svc.corp.internal:3000"
    assert (
        ctx.endpoint(svc, Port(3000, "service"), "https")
        == "https://grafana.obs.svc.corp.internal:3000"
    )
