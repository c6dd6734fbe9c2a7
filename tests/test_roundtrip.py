"""What the printed ConfigMap carries survives ``kubectl apply`` byte for byte.

``dyntoolset discover`` prints the ConfigMap as YAML. Everything it does not
own (foreign data keys, ``overrides.yaml``, annotations) must read back
exactly as it was, whatever characters it holds: YAML reads NEL (U+0085),
LS and PS as line breaks, so written raw they came back as newlines or
spaces. And every generated document must still parse after the trip.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dyntoolset import Engine
from dyntoolset.config import load_config
from dyntoolset.configmap import OVERRIDES_KEY, for_display, to_yaml
from dyntoolset.snapshot import SnapshotError, service_from_object
from dyntoolset.testing import make_plugin_set, make_service

T0 = "2026-01-01T00:00:00Z"
SERVICES = [
    make_service(
        "prometheus-server",
        "monitoring",
        labels={"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"},
        ports=[(80, "http")],
    ),
    make_service(
        "grafana", "monitoring", labels={"app.kubernetes.io/name": "grafana"}, ports=[(80, "web")]
    ),
]
PLUGINS = make_plugin_set()
ENGINE = Engine(load_config(None, PLUGINS), PLUGINS)

# Any text a ConfigMap can hold: every code point but lone surrogates (which
# UTF-8, and so the API server, cannot carry), with YAML's troublemakers often.
TRICKY = "\x85\u2028\u2029\r\n\t\x00\x1b\ufeff \"'#:&*!|>%@`-?"
TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs",)) | st.sampled_from(list(TRICKY)),
    max_size=40,
)
DATA_KEY = st.from_regex(r"[-._a-zA-Z0-9]{1,20}", fullmatch=True).filter(
    lambda k: k not in ("custom_toolset.yaml", "toolset.json", OVERRIDES_KEY)
)
ANNOTATION_KEY = st.from_regex(r"(example\.com/)?[a-z][-a-z0-9]{0,15}", fullmatch=True)


def printed_and_read_back(configmap: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(to_yaml(for_display(configmap)))
    return loaded


def assert_documents_parse(data: dict[str, str]) -> None:
    holmes = yaml.safe_load(data["custom_toolset.yaml"])
    assert isinstance(holmes["toolsets"], dict) and holmes["toolsets"]
    kubernaut = json.loads(data["toolset.json"])
    assert isinstance(kubernaut["tools"], list)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    foreign=st.dictionaries(DATA_KEY, TEXT, max_size=4),
    annotations=st.dictionaries(ANNOTATION_KEY, TEXT, max_size=3),
    overrides=TEXT,
)
def test_foreign_keys_annotations_and_overrides_round_trip_byte_for_byte(
    foreign: dict[str, str], annotations: dict[str, str], overrides: str
) -> None:
    existing = ENGINE.cycle(SERVICES, existing=None, now=T0).merge.configmap
    existing["data"].update(foreign)
    existing["data"][OVERRIDES_KEY] = overrides
    existing["metadata"]["annotations"].update(annotations)
    merged = ENGINE.cycle(SERVICES, existing=existing, now=T0).merge.configmap
    back = printed_and_read_back(merged)
    assert back == for_display(merged)  # nothing at all changed on the way
    for key, value in foreign.items():
        assert back["data"][key] == value
    assert back["data"][OVERRIDES_KEY] == overrides
    for key, value in annotations.items():
        assert back["metadata"]["annotations"][key] == value
    assert_documents_parse(back["data"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), TEXT, min_size=1, max_size=4
    ),
    description=TEXT,
)
def test_text_in_applied_overrides_round_trips_inside_the_generated_document(
    values: dict[str, str], description: str
) -> None:
    overrides = yaml.safe_dump(
        {
            "toolsets": {
                "grafana/dashboards": {"config": values},
                "team/notes": {"type": "http", "description": description, "config": values},
            }
        },
        allow_unicode=False,  # PyYAML writes NEL raw otherwise: the operator's text would differ
    )
    existing = ENGINE.cycle(SERVICES, existing=None, now=T0).merge.configmap
    existing["data"][OVERRIDES_KEY] = overrides
    merge = ENGINE.cycle(SERVICES, existing=existing, now=T0).merge
    assert merge.problems == ()
    back = printed_and_read_back(merge.configmap)
    assert back["data"][OVERRIDES_KEY] == overrides
    assert_documents_parse(back["data"])
    toolsets = yaml.safe_load(back["data"]["custom_toolset.yaml"])["toolsets"]
    for key, value in values.items():
        assert toolsets["grafana/dashboards"]["config"][key] == value
        assert toolsets["team/notes"]["config"][key] == value
    assert toolsets["team/notes"]["description"] == description


@pytest.mark.parametrize("text", ["a\x85b", "line\u2028sep", "para\u2029sep", "x\n\x85y"])
def test_other_yaml_line_breaks_are_escaped_not_written_raw(text: str) -> None:
    printed = to_yaml({"data": {"k": text}})
    assert not set(printed) & {"\x85", "\u2028", "\u2029"}
    assert yaml.safe_load(printed) == {"data": {"k": text}}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "web\x85\x00", "spec.ports[0].name 'web\\x85\\x00' is not a valid port name"),
        ("name", "Web", "spec.ports[0].name 'Web' is not a valid port name"),
        ("protocol", "tcp\x85", "spec.ports[0].protocol must be one of TCP, UDP, SCTP"),
        ("appProtocol", "h\x002", "spec.ports[0].appProtocol: invalid appProtocol"),
    ],
)
def test_port_strings_the_api_server_refuses_are_refused(
    field: str, value: str, message: str
) -> None:
    # A port name with NEL and NUL once reached toolset.json and, after a
    # trip through YAML, made it invalid JSON: the agent lost every toolset.
    port = {"port": 80, "name": "web", field: value}
    with pytest.raises(SnapshotError) as info:
        service_from_object({"metadata": {"name": "svc"}, "spec": {"ports": [port]}})
    assert str(info.value).startswith(message)


def test_a_service_port_name_is_a_dns_label_not_an_iana_name() -> None:
    # Container ports use 15-character IANA names; Service ports DNS labels
    # (the Grafana Tempo chart names one 'tempo-prom-metrics').
    port = {"port": 3100, "name": "tempo-prom-metrics"}
    service = service_from_object({"metadata": {"name": "tempo"}, "spec": {"ports": [port]}})
    assert service.ports[0].name == "tempo-prom-metrics"


@pytest.mark.parametrize("name", ["2024-01-01", 5, ["a"]])
def test_a_name_that_is_not_a_string_says_so(name: object) -> None:
    value = yaml.safe_load(f"n: {name}")["n"] if isinstance(name, str) else name
    with pytest.raises(SnapshotError, match=r"^metadata\.name must be a string, got "):
        service_from_object({"metadata": {"name": value}, "spec": {"ports": [{"port": 80}]}})
