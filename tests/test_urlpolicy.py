"""One URL and name policy: the same hostile value gets the same verdict at every entry point.

Hosts, endpoints and health paths enter through the configuration, the
``custom`` detector's annotations, a plugin's class attributes and the
health-check guard; names through snapshots and detector registration. Each
table row runs through all of them and must be accepted everywhere or
refused everywhere.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from dyntoolset import urlpolicy
from dyntoolset.config import parse_config
from dyntoolset.detector import Detector
from dyntoolset.detectors.custom import ENABLED, ENDPOINT, HEALTH_PATH, TYPE, CustomDetector
from dyntoolset.errors import InvalidService
from dyntoolset.health.guard import Blocked, build_target
from dyntoolset.model import Discovered, Port, Service
from dyntoolset.plugins import validate_extension
from dyntoolset.snapshot import SnapshotError, service_from_object
from tests.detectors._support import ctx_for, service

OWN = "billing.shop.svc.cluster.local"
ALLOWED = ("*.example.com",)

# (health path, accepted?)
HEALTH_PATHS = [
    ("/", True),
    ("/-/healthy", True),
    ("/_cluster/health?local=true", True),
    ("/q?a=1&b=2", True),
    ("/a%20b", True),
    ("/x:y/~z", True),
    ("healthz", False),
    ("//169.254.169.254/", False),
    ("/a//b", False),
    ("/x@evil", False),
    ("/x#y", False),
    ("/x\\y", False),
    ("/a/../b", False),
    ("/a/%2e%2E/b", False),
    ("/a%2fb", False),
    ("/a%2Fb", False),
    ("/a%25", False),
    ("/a%252e%252e", False),
    ("/a%ff", False),
    ("/a%zz", False),
    ("/a%0aX-Injected:1", False),
    ("/a%00", False),
    ("/a?b/c", False),
    ("/a?x=@", False),
    ("/a?x=%2e%2e", False),
    ("/a?x=1#f", False),
    ("/!!python/object", False),
    ("/&anchor", False),
    ('/"x"', False),
    ("/ä", False),
    ("/" + "a" * 300, False),
]

# (endpoint, accepted?) for the Service billing.shop with ALLOWED as allow-list
ENDPOINTS = [
    (f"http://{OWN}:8080", True),
    ("http://billing.shop:8080/api/v1", True),
    (f"HTTP://{OWN.upper()}.:8080/x", True),
    ("https://metrics.example.com/api", True),
    ("http://metrics.example.com/a:b", True),
    ("http://169.254.169.254/latest", False),
    ("http://[::ffff:169.254.169.254]/", False),
    ("http://[fe80::1%25lo]:8080/", False),
    ("http://0xA9FEA9FE/", False),
    ("http://2852039166/", False),
    ("http://0251.0376.0251.0376/", False),
    ("http://127.1:8080/", False),
    ("http://localhost:8080/", False),
    ("http://x.localhost:8080/", False),
    ("http://metadata.google.internal/", False),
    ("http://a_b.example.com/", False),
    ("http://vault.vault.svc:8200/", False),
    (f"http://{OWN}.evil.com/", False),
    ("file:///etc/passwd", False),
    ("gopher://billing.shop:8080/_x", False),
    (f"http://user@{OWN}:8080", False),
    (f"http://{OWN}:8080@169.254.169.254/", False),
    (f"http://{OWN}:8080/?x=1", False),
    (f"http://{OWN}:8080/#x", False),
    (f"http://{OWN}:99999/", False),
    (f"http://{OWN}:0/", False),
    (f"http://{OWN}:8080/a/../b", False),
    (f"http://{OWN}:8080/a%2fb", False),
    (f"http://{OWN}:8080/a%25", False),
    (f"http://{OWN}:8080/a%ff", False),
    (f"http://{OWN}:8080/a//b", False),
    (f"http://{OWN}:8080/!x", False),
    (f"http://{OWN}:8080/a\\b", False),
    (f"http://{OWN}:8080/a\rb", False),
]


def _service() -> Service:
    return service("billing", "shop", ports=[{"name": "http", "port": 8080}])


def _via_config(path: str) -> bool:
    text = "detectors: {custom: {health_check: {path: " + _yaml_quote(path) + "}}}"
    _, problems = parse_config(text)
    return not problems


def _yaml_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r") + '"'


def _via_annotation(annotations: dict[str, str]) -> bool:
    detector = CustomDetector()
    svc = service(
        "billing",
        "shop",
        annotations={ENABLED: "true", TYPE: "billing-api", **annotations},
        ports=[{"name": "http", "port": 8080}],
    )
    try:
        found = detector.detect(svc, ctx_for(detector, allowed_hosts=ALLOWED))
    except InvalidService:
        return False
    assert found is not None
    return True


def _via_guard(endpoint: str, health_path: str) -> bool:
    svc = _service()
    found = Discovered(
        service=svc,
        detector="custom",
        type="billing-api",
        endpoint=endpoint,
        health_path=health_path,
        port=Port(port=8080),
    )
    try:
        build_target(found, health_path, allowed_hosts=ALLOWED)
    except Blocked:
        return False
    return True


def _via_plugin_class(path: str) -> bool:
    class Probe(Detector):
        name: ClassVar[str] = "probe"
        health_path: ClassVar[str] = path

        def detect(self, service: Any, ctx: Any) -> None:
            return None

    return validate_extension("detector", Probe) is None


@pytest.mark.parametrize(("path", "accepted"), HEALTH_PATHS)
def test_every_entry_point_judges_a_health_path_alike(path: str, accepted: bool) -> None:
    verdicts = {
        "urlpolicy": urlpolicy.health_path_problem(path) is None,
        "configuration": _via_config(path),
        "custom annotation": _via_annotation({HEALTH_PATH: path}),
        "health guard": _via_guard(f"http://{OWN}:8080", path),
        "plugin class": _via_plugin_class(path),
    }
    assert verdicts == dict.fromkeys(verdicts, accepted)


@pytest.mark.parametrize(("endpoint", "accepted"), ENDPOINTS)
def test_every_entry_point_judges_an_endpoint_alike(endpoint: str, accepted: bool) -> None:
    own = urlpolicy.own_hosts("billing", "shop", "cluster.local")
    try:
        urlpolicy.parse_endpoint(endpoint, own, ALLOWED)
        policy = True
    except urlpolicy.EndpointRefused:
        policy = False
    verdicts = {
        "urlpolicy": policy,
        "custom annotation": _via_annotation({ENDPOINT: endpoint}),
        "health guard": _via_guard(endpoint, "/"),
    }
    assert verdicts == dict.fromkeys(verdicts, accepted)


# (name, valid Service name?, valid namespace?)
NAMES = [
    ("prom", True, True),
    ("9prom", False, True),
    ("a" * 63, True, True),
    ("a" * 64, False, False),
    ("Prom", False, False),
    ("pr_om", False, False),
    ("pr.om", False, False),
    ("-x", False, False),
    ("x-", False, False),
    ("x@169.254.169.254/#", False, False),
    ("mon\nx", False, False),
]


@pytest.mark.parametrize(("name", "service_ok", "namespace_ok"), NAMES)
def test_names_are_judged_alike_by_snapshots_and_registration(
    name: str, service_ok: bool, namespace_ok: bool
) -> None:
    def snapshot_accepts(meta: dict[str, str]) -> bool:
        try:
            service_from_object({"metadata": meta, "spec": {"ports": [{"port": 80}]}})
        except SnapshotError:
            return False
        return True

    class Named(Detector):
        def detect(self, service: Any, ctx: Any) -> None:
            return None

    Named.name = name
    assert snapshot_accepts({"name": name, "namespace": "mon"}) is service_ok
    assert (urlpolicy.dns1035_label_problem(name) is None) is service_ok
    assert (validate_extension("detector", Named) is None) is service_ok
    assert snapshot_accepts({"name": "prom", "namespace": name}) is namespace_ok
    assert (urlpolicy.dns_label_problem(name) is None) is namespace_ok
    _, problems = parse_config(f"output: {{namespace: {_yaml_quote(name)}}}")
    assert (not problems) is namespace_ok


def test_the_health_path_query_rule_is_documented() -> None:
    # docs/health-checks.md states the decision this test pins down.
    assert urlpolicy.health_path_problem("/_cluster/health?local=true") is None
    assert urlpolicy.path_problem("/_cluster/health?local=true") is not None


def test_a_cluster_domain_must_leave_room_for_service_host_names() -> None:
    longest = "a" * 63 + "." + "b" * 63 + ".svc."
    fits = ("c" * 60 + ".") + "d" * (urlpolicy.MAX_CLUSTER_DOMAIN - 61)
    assert len(longest + fits) == urlpolicy.MAX_DNS_NAME
    assert urlpolicy.cluster_domain_problem(fits) is None
    _, problems = parse_config(f"cluster_domain: {fits}x")
    assert [p.path for p in problems] == ["$.cluster_domain"]
    assert "leave room for Service host names" in problems[0].message
    label_253 = ".".join(["a" * 63] * 4)[:253]
    _, problems = parse_config(f"cluster_domain: {label_253}")
    assert [p.path for p in problems] == ["$.cluster_domain"]
