"""SSRF guards without any network: URL, path, host and address rules."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dyntoolset.health.guard import (
    Blocked,
    ResolutionFailed,
    address_problem,
    build_target,
    parse_networks,
    path_problem,
    pin_address,
)
from tests.health._servers import FakeResolver, discovered

OWN = "http://prom.monitoring.svc.cluster.local:9090"


def target(endpoint: str = OWN, path: str = "/-/healthy", **kw: object):  # type: ignore[no-untyped-def]
    return build_target(discovered(endpoint=endpoint), path, **kw)  # type: ignore[arg-type]


def test_own_endpoint_is_accepted() -> None:
    t = target()
    assert (t.scheme, t.host, t.port, t.path, t.own_host) == (
        "http",
        "prom.monitoring.svc.cluster.local",
        9090,
        "/-/healthy",
        True,
    )
    assert t.host_header == "prom.monitoring.svc.cluster.local:9090"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://prom.monitoring:9090",
        "http://prom.monitoring.svc:9090",
        "HTTPS://PROM.Monitoring.svc.cluster.local.",
    ],
)
def test_other_spellings_of_the_own_name(endpoint: str) -> None:
    assert target(endpoint).own_host


def test_endpoint_path_prefix_is_kept() -> None:
    assert target(OWN + "/prometheus/").path == "/prometheus/-/healthy"


def test_default_ports() -> None:
    assert target("https://prom.monitoring.svc.cluster.local").port == 443
    assert target("http://prom.monitoring.svc.cluster.local").port == 80


def test_custom_cluster_domain() -> None:
    with pytest.raises(Blocked):
        target(cluster_domain="corp.example")
    assert target(
        "http://prom.monitoring.svc.corp.example:1", cluster_domain="corp.example"
    ).own_host


@pytest.mark.parametrize(
    "endpoint, why",
    [
        ("file:///etc/passwd", "scheme"),
        ("gopher://prom.monitoring.svc.cluster.local:70/_x", "scheme"),
        ("ftp://prom.monitoring.svc.cluster.local", "scheme"),
        ("prom.monitoring.svc.cluster.local:9090", "scheme"),
        ("http://user:pw@prom.monitoring.svc.cluster.local:9090", "credentials"),
        ("http://prom.monitoring.svc.cluster.local:9090@169.254.169.254", "credentials"),
        ("http://@169.254.169.254/", "credentials"),
        ("http://prom.monitoring.svc.cluster.local:9090/?x=1", "query"),
        ("http://prom.monitoring.svc.cluster.local:9090/#frag", "query"),
        ("http://prom.monitoring.svc.cluster.local:99999", "valid URL"),
        ("http://prom.monitoring.svc.cluster.local\\@evil", "backslash"),
        ("http://prom.monitoring.svc.cluster.local\r\nX: y", "control"),
        ("http://169.254.169.254/", "neither"),
        ("http://[::ffff:169.254.169.254]/", "neither"),
        ("http://0xA9FEA9FE/", "numeric"),
        ("http://2852039166/", "numeric"),
        ("http://0251.0376.0251.0376/", "numeric"),
        ("http://127.1:9090/", "numeric"),
        ("http://localhost:10250/", "local machine"),
        ("http://grafana.monitoring.svc.cluster.local:3000", "neither"),
        ("http://prom.monitoring.svc.cluster.local.evil.example:9090", "neither"),
        ("http://evil.example/", "neither"),
    ],
)
def test_refused_endpoints(endpoint: str, why: str) -> None:
    with pytest.raises(Blocked, match=why.replace("\\", "")) as info:
        target(endpoint)
    assert str(info.value)


@pytest.mark.parametrize(
    "path",
    [
        "@169.254.169.254/",
        "-/healthy",
        "/a/../b",
        "/%2e%2e/x",
        "/%2E%2e/x",
        "/a%2fb",
        "/a%5cb",
        "/a%40b",
        "/a%00",
        "/a%zz",
        "/a#b",
        "/a?b/c",
        "/a?x=@",
        "/a?x=%2e%2e",
        "/a\\b",
        "/a\r\nHost: x",
        "/a b",
        "/ä",
        "/%c0%ae%c0%ae/",
    ],
)
def test_refused_health_paths(path: str) -> None:
    with pytest.raises(Blocked):
        target(path=path)
    assert path_problem(path) is not None


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/-/healthy",
        "/api/health",
        "/_cluster/health",
        "/a%20b",
        "/x:y/~z",
        "/_cluster/health?local=true",
        "/q?a=1&b=2",
    ],
)
def test_accepted_health_paths(path: str) -> None:
    assert target(path=path).path == path


def test_allowed_hosts_patterns() -> None:
    t = target("https://grafana.example.com/", allowed_hosts=("*.example.com",))
    assert (t.host, t.own_host) == ("grafana.example.com", False)
    with pytest.raises(Blocked):
        target("https://grafana.example.org/", allowed_hosts=("*.example.com",))
    # The allow-list does not make numeric encodings or localhost acceptable.
    for endpoint in ("http://0xA9FEA9FE/", "http://localhost/"):
        with pytest.raises(Blocked):
            target(endpoint, allowed_hosts=("*",))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "0.0.0.0",
        "169.254.169.254",
        "169.254.0.1",
        "100.100.100.200",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::169.254.169.254",
        "fe80::1",
        "fd00:ec2::254",
        "ff02::1",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
        "2002:7f00:1::1",
    ],
)
def test_blocked_addresses(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "10.96.0.10",
        "172.16.5.4",
        "192.168.1.1",
        "8.8.8.8",
        "fd12:3456::1",
        "2001:db8::1",
        "64:ff9b::808:808",
    ],
)
def test_cluster_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_allowed_networks_override() -> None:
    allowed = parse_networks(["127.0.0.0/8", "::ffff:0:0/96"])
    assert address_problem(ipaddress.ip_address("127.0.0.1"), allowed) is None
    assert address_problem(ipaddress.ip_address("::ffff:127.0.0.1"), allowed) is None
    assert address_problem(ipaddress.ip_address("169.254.169.254"), allowed) is not None


def test_pin_address_resolves_once_and_checks_every_answer() -> None:
    resolver = FakeResolver(
        {
            "a.example": ["10.0.0.5", "10.0.0.6"],
            "rebind.example": ["10.0.0.5", "169.254.169.254"],
            "empty.example": [],
            "junk.example": ["not-an-ip"],
        }
    )
    assert str(pin_address("a.example", resolver)) == "10.0.0.5"
    assert resolver.calls == ["a.example"]
    with pytest.raises(Blocked, match=r"169\.254\.169\.254"):
        pin_address("rebind.example", resolver)
    with pytest.raises(ResolutionFailed):
        pin_address("empty.example", resolver)
    with pytest.raises(ResolutionFailed):
        pin_address("nxdomain.example", resolver)
    with pytest.raises(Blocked):
        pin_address("junk.example", resolver)


def test_pin_address_of_a_literal_does_no_lookup() -> None:
    resolver = FakeResolver()
    assert str(pin_address("10.1.2.3", resolver)) == "10.1.2.3"
    with pytest.raises(Blocked):
        pin_address("169.254.169.254", resolver)
    with pytest.raises(Blocked):
        pin_address("::ffff:a9fe:a9fe", resolver)
    assert resolver.calls == []


def test_zone_ids_do_not_hide_link_local() -> None:
    with pytest.raises(Blocked):
        pin_address("x.example", FakeResolver({"x.example": ["fe80::1%eth0"]}))


def _encodings(value: int) -> list[str]:
    octets = value.to_bytes(4, "big")
    return [
        str(value),
        hex(value),
        hex(value).upper().replace("0X", "0x"),
        ".".join(f"0{b:o}" for b in octets),
        ".".join(hex(b) for b in octets),
        f"{octets[0]}.{int.from_bytes(octets[1:], 'big')}",
        f"{octets[0]}.{octets[1]}.{int.from_bytes(octets[2:], 'big')}",
    ]


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_numeric_encodings_of_any_address_are_refused(value: int) -> None:
    # Whatever the address, an alternative numeric spelling never gets through,
    # even with a match-everything allow-list; socket.inet_aton would accept it.
    for encoded in _encodings(value):
        if encoded == str(ipaddress.IPv4Address(value)):
            continue
        with pytest.raises(Blocked):
            build_target(discovered(endpoint=f"http://{encoded}:80"), "/", allowed_hosts=("*",))


def test_inet_aton_really_reads_these_encodings() -> None:
    # Why the rule exists: the C library treats them as addresses.
    assert socket.inet_aton("0xA9FEA9FE") == socket.inet_aton("169.254.169.254")
    assert socket.inet_aton("2852039166") == socket.inet_aton("169.254.169.254")
