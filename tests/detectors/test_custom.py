"""The ``custom`` detector: opt-in annotations, their validation, and the endpoint guard."""

from __future__ import annotations

import re
import string
from urllib.parse import unquote

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dyntoolset.detector import NoSettings
from dyntoolset.detectors.custom import (
    ENABLED,
    ENDPOINT,
    HEALTH_PATH,
    TYPE,
    CustomDetector,
)
from dyntoolset.errors import InvalidService
from dyntoolset.model import Discovered
from tests.property_support import ACCEPT_SHARE, Outcomes, mostly, one_in

from ._support import ctx_for, service

DETECTOR = CustomDetector()
OPT_IN = {ENABLED: "enabled", TYPE: "billing-api"}
OWN_HOST = "billing.shop.svc.cluster.local"


def _detect(annotations: dict[str, str], **kwargs: object) -> Discovered | None:
    ctx_overrides = kwargs.pop("ctx", {})
    assert isinstance(ctx_overrides, dict)
    svc = service("billing", "shop", annotations=annotations, **kwargs)  # type: ignore[arg-type]
    return DETECTOR.detect(svc, ctx_for(DETECTOR, **ctx_overrides))


def _reason(annotations: dict[str, str], **kwargs: object) -> str:
    with pytest.raises(InvalidService) as info:
        _detect(annotations, **kwargs)
    return info.value.reason


# -- opting in -------------------------------------------------------------


def test_not_annotated_is_not_custom() -> None:
    assert _detect({}) is None
    assert _detect({TYPE: "prometheus"}) is None  # a type alone does not opt in


@pytest.mark.parametrize("value", ["enabled", "true", "Enabled", "TRUE", " true "])
def test_opt_in_values(value: str) -> None:
    found = _detect({ENABLED: value, TYPE: "billing-api"})
    assert found is not None
    assert found.type == "billing-api"
    assert found.detector == "custom"
    assert found.endpoint == f"http://{OWN_HOST}:8080"
    assert found.health_path == "/"


@pytest.mark.parametrize("value", ["false", "disabled", "", "FALSE"])
def test_opt_out_values(value: str) -> None:
    assert _detect({ENABLED: value, TYPE: "billing-api"}) is None


def test_unknown_switch_value_is_invalid() -> None:
    reason = _reason({ENABLED: "yes", TYPE: "billing-api"})
    assert reason.startswith(f"annotation {ENABLED} must be")
    assert "'yes'" in reason


def test_type_is_required() -> None:
    assert _reason({ENABLED: "true"}) == f"annotation {TYPE} is required when {ENABLED} is set"


def test_port_choice_prefers_named_http_then_first_tcp_port() -> None:
    ports = [{"name": "grpc", "port": 9000}, {"name": "metrics", "port": 9100}]
    found = _detect(OPT_IN, ports=ports)
    assert found is not None and found.port is not None
    assert found.port.port == 9000  # first port
    found = _detect(OPT_IN, ports=[{"name": "https", "port": 8443}, {"name": "x", "port": 1}])
    assert found is not None
    assert found.endpoint == f"https://{OWN_HOST}:8443"


def test_no_ports_and_no_endpoint_is_invalid() -> None:
    reason = _reason(OPT_IN, ports=[])
    assert reason == f"the Service has no TCP ports; add one or set annotation {ENDPOINT}"
    udp_only = [{"name": "dns", "port": 53, "protocol": "UDP"}]
    assert _reason(OPT_IN, ports=udp_only).startswith("the Service has no TCP ports")


def test_external_name_is_invalid() -> None:
    reason = _reason(OPT_IN, type_="ExternalName", cluster_ip="")
    assert reason == "ExternalName Services cannot be toolsets"


def test_cluster_domain_is_used() -> None:
    found = _detect(OPT_IN, ctx={"cluster_domain": "corp.internal"})
    assert found is not None
    assert found.endpoint == "http://billing.shop.svc.corp.internal:8080"


def test_configured_health_path_is_the_default() -> None:
    found = _detect(OPT_IN, ctx={"health_path": "/status"})
    assert found is not None and found.health_path == "/status"
    found = _detect({**OPT_IN, HEALTH_PATH: "/ping"}, ctx={"health_path": "/status"})
    assert found is not None and found.health_path == "/ping"


# -- values that would corrupt YAML or logs ----------------------------------

INJECTIONS = [
    ("newline", "billing\nkind: Secret"),
    ("carriage return", "billing\r"),
    ("double quote", 'billing"'),
    ("single quote", "billing'"),
    ("colon space", "billing: x"),
    ("hash", "billing#x"),
    ("python tag", "!!python/object:os.system"),
    ("anchor", "&anchor billing"),
    ("alias", "*anchor"),
    ("uppercase", "Billing"),
    ("unicode", "bílling"),
    ("empty", ""),
]


@pytest.mark.parametrize(("what", "value"), INJECTIONS, ids=[w for w, _ in INJECTIONS])
def test_bad_type_values_skip_the_service(what: str, value: str) -> None:
    reason = _reason({ENABLED: "true", TYPE: value})
    assert reason.startswith(f"annotation {TYPE} must be")


def test_control_characters_are_reported_escaped() -> None:
    reason = _reason({ENABLED: "true", TYPE: "a\nb"})
    assert reason == f"annotation {TYPE} must be one line of printable ASCII, got 'a\\nb'"
    assert "\n" not in reason


def test_ten_kilobyte_values_are_refused_without_echoing_them() -> None:
    big = "a" * 10_240
    for key, base in ((TYPE, {ENABLED: "true"}), (ENDPOINT, OPT_IN), (HEALTH_PATH, OPT_IN)):
        reason = _reason({**base, key: big})
        assert reason.startswith(f"annotation {key} is 10240 characters long; the limit is ")
        assert len(reason) < 200
    assert "is 64 characters long; the limit is 63" in _reason({ENABLED: "true", TYPE: "a" * 64})
    switch = _reason({ENABLED: "t" * 17, TYPE: "x"})
    assert switch == f"annotation {ENABLED} is 17 characters long; the limit is 16"


def test_long_bad_values_are_quoted_truncated() -> None:
    reason = _reason({ENABLED: "true", TYPE: "A" * 50})
    assert reason.endswith("got '" + "A" * 40 + "'...")


# -- endpoint override -----------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "expected", "port"),
    [
        ("http://billing.shop:8080", "http://billing.shop:8080", 8080),
        ("http://billing.shop.svc:8080/api/v1/", "http://billing.shop.svc:8080/api/v1", 8080),
        (f"http://{OWN_HOST}:8080", f"http://{OWN_HOST}:8080", 8080),
        (f"HTTP://{OWN_HOST.upper()}.:8080/x", f"http://{OWN_HOST}:8080/x", 8080),
        ("https://billing.shop.svc:8443", "https://billing.shop.svc:8443", 8443),
        ("https://billing.shop.svc/", "https://billing.shop.svc:443", 443),
    ],
)
def test_endpoint_override_on_the_services_own_name(
    endpoint: str, expected: str, port: int
) -> None:
    ports = [
        {"name": "http", "port": 8080},
        {"name": "https", "port": 8443},
        {"name": "tls", "port": 443},
    ]
    found = _detect({**OPT_IN, ENDPOINT: endpoint}, ports=ports)
    assert found is not None
    assert found.endpoint == expected
    assert found.port is not None and found.port.port == port


SSRF = [
    ("metadata IP", "http://169.254.169.254/latest/meta-data", "not an IP address"),
    ("IPv4-mapped IPv6", "http://[::ffff:169.254.169.254]/", "not an IP address"),
    ("hex IP", "http://0xA9FEA9FE/", "not an IP address"),
    ("decimal IP", "http://2852039166/", "not an IP address"),
    ("octal IP", "http://0251.0376.0251.0376/", "not an IP address"),
    ("loopback", "http://127.0.0.1:10250/", "not an IP address"),
    ("kubelet", "localhost:10250", "must be an http:// or https:// URL"),
    ("kubelet http", "http://localhost:10250/pods", "must point at the Service itself"),
    ("file", "file:///etc/passwd", "must be an http:// or https:// URL"),
    ("gopher", "gopher://billing.shop.svc:8080/_x", "must be an http:// or https:// URL"),
    ("userinfo", "http://billing.shop.svc@169.254.169.254/", "must not contain user information"),
    ("bare userinfo", "@169.254.169.254/", "must be an http:// or https:// URL"),
    ("other service", "http://vault.vault.svc:8200/", "must point at the Service itself"),
    ("api server", "https://kubernetes.default.svc/", "must point at the Service itself"),
    ("suffix trick", f"http://{OWN_HOST}.evil.com/", "must point at the Service itself"),
    ("bare name", "http://billing:8080/", "must point at the Service itself"),
    ("metadata name", "http://metadata.google.internal/", "must point at the Service itself"),
    ("query", f"http://{OWN_HOST}:8080/?x=1", "must not have a query string or fragment"),
    ("fragment", f"http://{OWN_HOST}:8080/#x", "must not have a query string or fragment"),
    ("dot dot", f"http://{OWN_HOST}:8080/a/../../x", "no '..'"),
    ("encoded dot dot", f"http://{OWN_HOST}:8080/a/%2e%2e/x", "no '..'"),
    ("encoded NUL", f"http://{OWN_HOST}:8080/a%00", "no '..'"),
    ("encoded slash", f"http://{OWN_HOST}:8080/a%2F..%2Fb", "no '..'"),
    ("yaml in path", f"http://{OWN_HOST}:8080/!!python/object", "path may only contain"),
    ("bad port", f"http://{OWN_HOST}:99999/", "is not a valid URL"),
    ("port zero", f"http://{OWN_HOST}:0/", "has port 0"),
    ("unexposed port", f"http://{OWN_HOST}:9999/", "uses port 9999, which the Service does not"),
    ("spaces", f" http://{OWN_HOST}:8080", "must not contain spaces"),
    ("no host", "http:///x", "must be an http:// or https:// URL"),
    ("broken ipv6", "http://[::1/", "is not a valid URL"),
]


@pytest.mark.parametrize(("what", "endpoint", "reason"), SSRF, ids=[w for w, _, _ in SSRF])
def test_endpoint_override_is_refused(what: str, endpoint: str, reason: str) -> None:
    assert reason in _reason({**OPT_IN, ENDPOINT: endpoint})


def test_allowed_hosts_extend_the_own_names() -> None:
    ctx = {"allowed_hosts": ("*.example.com", "prometheus.infra")}
    found = _detect({**OPT_IN, ENDPOINT: "https://metrics.example.com/api"}, ctx=ctx)
    assert found is not None
    assert found.endpoint == "https://metrics.example.com:443/api"
    assert found.port is not None and found.port.port == 443  # not a port of the Service
    found = _detect({**OPT_IN, ENDPOINT: "http://prometheus.infra:9090"}, ctx=ctx)
    assert found is not None and found.endpoint == "http://prometheus.infra:9090"
    # The patterns never let IP literals or the node through.
    for endpoint in ("http://169.254.169.254/", "http://localhost/", "http://example.com/"):
        with pytest.raises(InvalidService):
            _detect({**OPT_IN, ENDPOINT: endpoint}, ctx=ctx)
    everything = {"allowed_hosts": ("*",)}
    for endpoint in ("http://0xA9FEA9FE/", "http://localhost/", "http://metadata/"):
        with pytest.raises(InvalidService):
            _detect({**OPT_IN, ENDPOINT: endpoint}, ctx=everything)


def test_allowed_hosts_come_from_the_health_checks_section() -> None:
    from dyntoolset.config import load_config_text
    from dyntoolset.discovery import create_detectors, discover
    from dyntoolset.testing import make_plugin_set

    plugins = make_plugin_set()
    config = load_config_text("health_checks: {allowed_hosts: ['*.example.com']}", "test", plugins)
    svc = service("billing", "shop", annotations={**OPT_IN, ENDPOINT: "https://m.example.com"})
    [found] = discover([svc], create_detectors(config, plugins)).discovered
    assert found.endpoint == "https://m.example.com:443"


def test_headless_service_may_use_any_pod_port() -> None:
    found = _detect({**OPT_IN, ENDPOINT: f"http://{OWN_HOST}:9999"}, cluster_ip="None")
    assert found is not None
    assert found.port is not None and found.port.port == 9999


# -- health path -----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/healthz", "/-/ready", "/api/v1/status?verbose=1", "/a%20b"]
)
def test_good_health_paths(path: str) -> None:
    found = _detect({**OPT_IN, HEALTH_PATH: path})
    assert found is not None and found.health_path == path


BAD_HEALTH = [
    ("relative", "healthz", "must start with '/'"),
    ("network path", "//169.254.169.254/", "must not start with '//'"),
    ("at", "/x@evil", "must not contain '@'"),
    ("hash", "/x#y", "must not contain '#'"),
    ("backslash", "/x\\y", "must not contain '\\\\'"),
    ("dot dot", "/a/../b", "must not contain '..'"),
    ("encoded dot dot", "/a/%2E%2E/b", "must not contain '..'"),
    ("encoded newline", "/a%0aX-Injected: 1", "must not percent-encode control characters"),
    ("encoded NUL", "/a%00b", "must not percent-encode control characters"),
    ("newline", "/a\nb", "one line of printable ASCII"),
    ("carriage return", "/a\rb", "one line of printable ASCII"),
    ("colon space", "/a: b", "may only contain"),
    ("python tag", "/!!python/object", "may only contain"),
    ("anchor", "/&anchor", "may only contain"),
    ("quote", '/"x"', "may only contain"),
]


@pytest.mark.parametrize(("what", "path", "reason"), BAD_HEALTH, ids=[w for w, _, _ in BAD_HEALTH])
def test_bad_health_paths(what: str, path: str, reason: str) -> None:
    assert reason in _reason({**OPT_IN, HEALTH_PATH: path})


def test_health_path_length_cap() -> None:
    assert _detect({**OPT_IN, HEALTH_PATH: "/" + "a" * 255}) is not None
    assert "the limit is 256" in _reason({**OPT_IN, HEALTH_PATH: "/" + "a" * 256})


# -- toolsets --------------------------------------------------------------


def test_custom_type_with_builtin_mapping_gets_that_toolset() -> None:
    found = _detect({**OPT_IN, TYPE: "prometheus", ENDPOINT: f"http://{OWN_HOST}:8080/prometheus"})
    assert found is not None
    (spec,) = DETECTOR.toolsets(found, NoSettings())
    assert spec.kind == "prometheus/metrics"
    assert spec.config == {"prometheus_url": f"http://{OWN_HOST}:8080/prometheus"}


def test_custom_type_without_mapping_gets_http_toolset() -> None:
    found = _detect(OPT_IN)
    assert found is not None
    (spec,) = DETECTOR.toolsets(found, NoSettings())
    assert spec.kind == "http"
    assert spec.config["endpoints"][0]["hosts"] == [f"http://{OWN_HOST}:8080"]
    assert spec.config["endpoints"][0]["methods"] == ["GET"]


# -- property: arbitrary annotation values ---------------------------------
#
# Most drawn values are valid, so the accept path (and an accepted endpoint
# override in particular) is exercised in most examples; hostile values are a
# deliberate minority, one in five per annotation. Each test records which path
# an example took (tests/property_support.py) and fails when the accept path
# falls under 30% of its examples.

#: The Service's ports in these tests: the endpoint override may use any of them.
PORTS = [{"name": "http", "port": 8080}, {"name": "web", "port": 80}, {"name": "tls", "port": 443}]
OWN_NAMES = ["billing.shop", "billing.shop.svc", OWN_HOST]
PATH_CHARS = string.ascii_letters + string.digits + "_~-"

_ANY_TEXT = st.text(max_size=300) | st.sampled_from(
    ["", "/", "http://billing.shop.svc:8080", "prometheus", "enabled", "true", "/healthz"]
)
_URLISH = st.builds(
    "{}://{}{}{}".format,
    st.sampled_from(["http", "https", "HTTP", "file", "gopher", "", "ftp"]),
    st.sampled_from([OWN_HOST, "billing.shop", "169.254.169.254", "[::1]", "a@b", "", "x.y"]),
    st.sampled_from(["", ":8080", ":0", ":65536", ":abc", ":443", ":9999"]),
    st.text(alphabet=string.printable, max_size=40),
)


@attrs.frozen
class Drawn:
    """An annotation value, and what the detector must make of it: ``expected``
    for a valid value, ``None`` for a hostile one (refused, or accepted only if
    it happens to be valid after all)."""

    text: str
    expected: str | None


def _kept(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[Drawn]:
    """Valid values the detector keeps as they are."""
    return strategy.map(lambda text: Drawn(text, text))


def _hostile(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[Drawn]:
    """Values the detector may refuse (or accept, if they happen to be valid)."""
    return strategy.map(lambda text: Drawn(text, None))


@st.composite
def valid_overrides(draw: st.DrawFn) -> Drawn:
    """An endpoint override on the Service's own name and ports, and its normal form."""
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(st.sampled_from(OWN_NAMES))
    port = draw(st.sampled_from([None, 8080, 80, 443]))
    segments = draw(st.lists(st.text(PATH_CHARS, min_size=1, max_size=10), max_size=3))
    path = "".join(f"/{s}" for s in segments)
    slash = "/" if draw(st.booleans()) else ""  # a trailing slash is dropped
    text = f"{scheme}://{host}{'' if port is None else f':{port}'}{path}{slash}"
    number = port if port is not None else (443 if scheme == "https" else 80)
    return Drawn(text, f"{scheme}://{host}:{number}{path}")


#: One thing wrong with an otherwise valid override: what an attacker would try.
CORRUPTIONS = {
    "host": [
        "169.254.169.254",
        "[::ffff:169.254.169.254]",
        "0xA9FEA9FE",
        "localhost",
        "metadata.google.internal",
        "vault.vault.svc",
        "kubernetes.default.svc",
        f"{OWN_HOST}.evil.com",
        "billing",
    ],
    "scheme": ["file", "gopher", "ftp", "javascript"],
    "port": ["0", "99999", "x", "9999"],  # 9999: not exposed (a headless Service allows it)
    "userinfo": ["user@", "billing.shop@", ":@"],
    "suffix": ["?x=1", "#frag", "/../../etc", "/%2e%2e/x", "/a%2Fb", "/!!python/object", "/a b"],
}


@st.composite
def corrupted_overrides(draw: st.DrawFn) -> str:
    """A valid override with exactly one part replaced by something hostile."""
    valid = draw(valid_overrides()).expected
    assert valid is not None
    scheme, rest = valid.split("://", 1)
    authority, slash, path = rest.partition("/")
    host, port = authority.rsplit(":", 1)
    # The host twice as often: pointing the agent elsewhere is the attack that matters most.
    part = draw(st.sampled_from(["host", *sorted(CORRUPTIONS)]))
    bad = draw(st.sampled_from(CORRUPTIONS[part]))
    if part == "host":
        host = bad
    elif part == "scheme":
        scheme = bad
    elif part == "port":
        port = bad
    elif part == "userinfo":
        host = bad + host
    else:
        path += bad
    return f"{scheme}://{host}:{port}{slash}{path}"


VALID_TYPES = st.sampled_from(
    ["billing-api", "prometheus", "loki", "grafana", "x"]
) | st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
VALID_HEALTH = st.sampled_from(["/", "/healthz", "/-/healthy", "/ready?full=1"]) | st.from_regex(
    r"/([A-Za-z0-9_~-]{1,12}(/[A-Za-z0-9_~-]{1,8}){0,2})?(\?[a-z]{1,5}=[a-z0-9]{1,5})?",
    fullmatch=True,
)
TYPES = mostly(_kept(VALID_TYPES), _hostile(_ANY_TEXT))
HEALTH_PATHS = st.none() | mostly(_kept(VALID_HEALTH), _hostile(_ANY_TEXT))

# Most hostile overrides are nearly valid (one part wrong), the rest noise.
HOSTILE_ENDPOINTS = mostly(corrupted_overrides(), _ANY_TEXT | _URLISH, hostile_one_in=3)


@st.composite
def endpoints(draw: st.DrawFn) -> Drawn | None:
    """No override one time in four; else a valid one, or (a minority) a hostile one."""
    if one_in(draw, 4):
        return None
    return draw(mostly(valid_overrides(), _hostile(HOSTILE_ENDPOINTS)))


ENDPOINTS = endpoints()


def _check_refusal(exc: InvalidService) -> None:
    assert exc.reason and "\n" not in exc.reason and len(exc.reason) < 400


@settings(max_examples=150, deadline=None)
@given(corrupted_overrides())
def test_an_override_with_one_part_wrong_is_refused(endpoint: str) -> None:
    """Every example is a nearly valid override (own name and port, plain path)
    with one part made hostile: each one must be refused, with a reason."""
    with pytest.raises(InvalidService, match=re.escape(f"annotation {ENDPOINT} ")) as info:
        _detect({**OPT_IN, ENDPOINT: endpoint}, ports=PORTS)
    _check_refusal(info.value)


PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.outcomes({"accepted": ACCEPT_SHARE, "endpoint override accepted": 0.15})
@settings(PROPERTY, max_examples=200)
@given(type_=TYPES, endpoint=ENDPOINTS, health=HEALTH_PATHS, headless=st.booleans())
def test_arbitrary_annotations_give_a_valid_result_or_invalid_service(
    outcomes: Outcomes, type_: Drawn, endpoint: Drawn | None, health: Drawn | None, headless: bool
) -> None:
    annotations = {ENABLED: "enabled", TYPE: type_.text}
    if endpoint is not None:
        annotations[ENDPOINT] = endpoint.text
    if health is not None:
        annotations[HEALTH_PATH] = health.text
    drawn = [d for d in (type_, endpoint, health) if d is not None]
    try:
        found = _detect(annotations, ports=PORTS, cluster_ip="None" if headless else "10.0.0.1")
    except InvalidService as exc:
        _check_refusal(exc)
        assert any(d.expected is None for d in drawn), f"valid annotations refused: {exc}"
        outcomes.saw("refused")
        return
    assert found is not None  # opted in, so never silently ignored
    assert found.type == type_.text
    assert found.endpoint.startswith(("http://", "https://"))
    host, port = found.endpoint.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    assert host in OWN_NAMES
    assert found.port is not None and port == str(found.port.port) and found.port.port > 0
    assert found.health_path == (health.text if health is not None else "/")
    assert found.health_path.startswith("/") and ".." not in found.health_path
    assert all(spec.kind for spec in DETECTOR.toolsets(found, NoSettings()))
    if endpoint is None:
        assert found.endpoint == f"http://{OWN_HOST}:8080"  # the port named http
        outcomes.saw("accepted", "own endpoint")
        return
    if endpoint.expected is not None:
        assert found.endpoint == endpoint.expected
    # Whatever was accepted is a plain base URL on the Service's own name.
    assert not any(c in found.endpoint for c in "?#@ ") and ".." not in unquote(found.endpoint)
    outcomes.saw("accepted", "endpoint override accepted")


ENABLED_VALUES = mostly(
    _kept(st.sampled_from(["enabled", "true", "TRUE", " Enabled "])), _hostile(_ANY_TEXT)
)
OPT_OUT = frozenset({"disabled", "false", ""})


@st.composite
def annotation_sets(draw: st.DrawFn) -> dict[str, str]:
    """The four annotations, each usually present and valid; any may be missing."""
    annotations = {}
    for key, values in ((ENABLED, ENABLED_VALUES), (TYPE, TYPES)):
        if not one_in(draw, 20):  # missing one time in twenty
            annotations[key] = draw(values).text
    for key, optional in ((ENDPOINT, ENDPOINTS), (HEALTH_PATH, HEALTH_PATHS)):
        value = draw(optional)
        if value is not None:
            annotations[key] = value.text
    return annotations


@pytest.mark.outcomes({"found": ACCEPT_SHARE})
@settings(PROPERTY, max_examples=200)
@given(annotation_sets())
def test_any_annotation_combination_never_raises_anything_else(
    outcomes: Outcomes, annotations: dict[str, str]
) -> None:
    try:
        found = _detect(annotations, ports=PORTS)
    except InvalidService as exc:
        _check_refusal(exc)
        outcomes.saw("refused")
        return
    if found is None:
        # Only a Service that did not opt in is ignored without a reason.
        switch = annotations.get(ENABLED)
        assert switch is None or switch.strip().lower() in OPT_OUT, switch
        outcomes.saw("not opted in")
        return
    assert attrs.has(type(found))
    assert found.key == "shop/billing" and found.detector == "custom"
    assert found.type == annotations[TYPE]
    outcomes.saw("found")
