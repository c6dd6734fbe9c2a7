"""End-to-end properties: arbitrary Service objects through the whole pure path.

Unlike ``test_properties.py`` (which feeds the renderers hand-built
``Discovered`` values), these start from raw ``v1/Service`` objects, as read
from manifests or the API, run them through :class:`~dyntoolset.Engine`
(snapshot, every built-in detector, toolset mapping, both renderers) and check
what reaches the ConfigMap:

* no exception escapes and no detector fails;
* Service objects are either refused by the snapshot (names no API server
  accepts) or discovered/skipped without any exception;
* both documents parse back to exactly the data that was built, with the
  same shape whatever the text in the cluster says;
* every toolset the detectors produced is in the HolmesGPT document (nothing
  silently dropped), and its tool names are unique and fit LLM limits;
* output is deterministic: the same input twice, or shuffled, gives
  byte-identical documents.

Most Services are ones a detector finds: the detector fixtures' chart
Services (tests/detectors/fixtures) and Services annotated for the custom
detector with mostly valid values. Near misses, hostile names, labels,
annotations, ports and Service types are deliberate minorities, and the test
fails when fewer than 30% of the Services are discovered
(tests/property_support.py).
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections import Counter
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from render_samples import HOSTILE_TEXT

from dyntoolset import Engine, load_config, service_from_object
from dyntoolset.config import load_config_text
from dyntoolset.discovery import DiscoveryResult
from dyntoolset.model import Service
from dyntoolset.render import holmesgpt, kubernaut
from dyntoolset.snapshot import SnapshotError
from dyntoolset.testing import make_plugin_set
from dyntoolset.toolsets import BUILTIN_URL_KEYS, HTTP_KIND
from tests.detectors._support import fixture_documents
from tests.property_support import ACCEPT_SHARE, Outcomes, mostly, one_in

HOSTILE = HOSTILE_TEXT

DNS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
#: Service names are RFC 1035 labels: they start with a letter.
NAME = st.from_regex(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
hostile = st.sampled_from(HOSTILE) | st.text(max_size=30)
anytext = DNS | hostile | st.builds(lambda a, b: a + b, st.sampled_from(HOSTILE), DNS)


def _fixture_services() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The detector fixtures (real chart Services): (what a built-in detector
    finds, near misses it must leave alone)."""
    found, near_misses = [], []
    for _, doc in fixture_documents():
        expect = doc["expect"]
        obj = {k: v for k, v in doc.items() if k != "expect"}
        if "none" in expect:
            near_misses.append(obj)
        elif expect["detector"] != "custom" and "invalid" not in expect:
            found.append(obj)
    return found, near_misses


DETECTED, NEAR_MISSES = _fixture_services()

PORT_NAMES = ["", "http", "https", "web", "http-web", "grafana", "query", "tcp-rest-api", "grpc"]
PORT_NUMBERS = [80, 443, 3000, 8080, 8428, 8481, 9090, 9091, 9200, 9300, 16686, 10901]

ENABLED = mostly(
    st.sampled_from(["enabled", "true", "TRUE", " enabled "]),
    st.sampled_from(["disabled", "false", ""]) | hostile,
)
TYPES = mostly(
    st.sampled_from(
        [
            "prometheus",
            "grafana",
            "elasticsearch",
            "loki",
            "tempo",
            "jaeger",
            "thanos",
            "victoria-metrics",
            "billing-api",
            "x",
            "a" * 63,
        ]
    ),
    st.sampled_from(["a" * 64, "Prometheus", "-x-"]) | hostile,
)
HEALTH = mostly(
    st.sampled_from(["/", "/healthz", "/ready?full=1", "/-/healthy"]),
    st.sampled_from(["//evil", "/../x", "/%2e%2e/"]) | hostile,
)


@st.composite
def valid_endpoints(draw: st.DrawFn, name: str, namespace: str, port: int) -> str:
    """An override the custom detector accepts: own name, a declared port, a plain path."""
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(
        st.sampled_from(
            [
                f"{name}.{namespace}",
                f"{name}.{namespace}.svc",
                f"{name}.{namespace}.svc.cluster.local",
            ]
        )
    )
    path = draw(st.sampled_from(["", "/", "/api", "/api/v1/", "/select/0/prometheus"]))
    return f"{scheme}://{host}:{port}{path}"


@st.composite
def hostile_endpoints(draw: st.DrawFn, name: str, namespace: str) -> str:
    scheme = draw(st.sampled_from(["http", "https", "ftp", "HTTP"]))
    host = draw(
        st.sampled_from(
            [
                f"{name}.{namespace}",
                f"{name}.{namespace}.svc.cluster.local.",
                "169.254.169.254",
                "[::ffff:169.254.169.254]",
                "0xA9FEA9FE",
                "localhost",
                "other.ns",
            ]
        )
    )
    port = draw(st.sampled_from(["", ":80", ":443", ":8080", ":9090", ":0", ":99999", ":x"]))
    path = draw(st.sampled_from(["", "/", "/api", "/a/../b", "/%2F", "/a b", "/é"]))
    return f"{scheme}://{host}{port}{path}"


@st.composite
def odd_ports(draw: st.DrawFn) -> list[dict[str, Any]]:
    """None, several, odd names and numbers, UDP, appProtocol."""
    return [
        {
            "port": draw(st.sampled_from(PORT_NUMBERS) | st.integers(1, 65535)),
            "name": draw(st.sampled_from(PORT_NAMES) | anytext),
            "protocol": draw(st.sampled_from(["TCP", "TCP", "UDP", "SCTP", "tcp"])),
            **({"appProtocol": "https"} if draw(st.booleans()) else {}),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]


@st.composite
def custom_services(draw: st.DrawFn, index: int) -> dict[str, Any]:
    """A plain Service that opts in with kubernaut.io/toolset* annotations."""
    name = draw(mostly(NAME, anytext, hostile_one_in=10)) or f"svc-{index}"
    namespace = draw(
        mostly(st.sampled_from(["monitoring", "team-a", "default"]) | DNS, anytext, 10)
    )
    port = draw(st.sampled_from([80, 443, 8080, 9090]))
    annotations = {"kubernaut.io/toolset": draw(ENABLED)}
    if not one_in(draw, 10):
        annotations["kubernaut.io/toolset-type"] = draw(TYPES)
    if draw(st.booleans()):
        annotations["kubernaut.io/toolset-endpoint"] = draw(
            mostly(
                valid_endpoints(name, namespace, port), hostile_endpoints(name, namespace) | hostile
            )
        )
    if draw(st.booleans()):
        annotations["kubernaut.io/toolset-health-path"] = draw(HEALTH)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "api"}},
        "spec": {"ports": [{"name": "http", "port": port, "protocol": "TCP"}]},
        "annotations": annotations,
    }


@st.composite
def service_objects(draw: st.DrawFn, index: int) -> dict[str, Any]:
    """Mostly Services that some detector finds (a chart's query Service, or one
    annotated for the custom detector), some near misses; then, each a
    deliberate minority, the hostile variations: names and namespaces no API
    server accepts, odd ports and Service types, hostile labels and annotations."""
    # Custom Services are refused more often (hostile annotation values), so
    # they get more draws: each path keeps a comfortable margin over its share.
    profile = draw(
        st.sampled_from(["detected", "detected", "custom", "custom", "custom", "near miss"])
    )
    if profile == "custom":
        obj = draw(custom_services(index))
        annotations = obj.pop("annotations")
    else:
        obj = copy.deepcopy(
            draw(st.sampled_from(DETECTED if profile == "detected" else NEAR_MISSES))
        )
        annotations = dict(obj["metadata"].get("annotations") or {})
        if one_in(draw, 10):
            obj["metadata"]["name"] = draw(anytext) or f"svc-{index}"
        if one_in(draw, 10):
            obj["metadata"]["namespace"] = draw(anytext)
    meta, spec = obj["metadata"], obj["spec"]
    labels = dict(meta.get("labels") or {})
    if one_in(draw, 5):
        labels.update(draw(st.dictionaries(anytext, anytext, max_size=2)))
    if one_in(draw, 5):
        annotations[
            draw(
                st.sampled_from(
                    [
                        "traefik.ingress.kubernetes.io/service.serversscheme",
                        "projectcontour.io/upstream-protocol.tls",
                        "service.beta.openshift.io/serving-cert-secret-name",
                    ]
                )
            )
        ] = draw(anytext)
    if one_in(draw, 5):
        annotations.update(draw(st.dictionaries(anytext, anytext, max_size=2)))
    if one_in(draw, 10):
        spec["ports"] = draw(odd_ports())
    if one_in(draw, 10):
        spec["type"] = draw(st.sampled_from(["NodePort", "ExternalName"]))
    if one_in(draw, 10):
        spec["clusterIP"] = draw(st.sampled_from(["None", ""]))
    meta.update(labels=labels, annotations=annotations)
    return obj


@st.composite
def clusters(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=1, max_value=8))
    # One object per namespace/name: with duplicates the last one wins, so
    # shuffling them would legitimately change the result.
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for i in range(count):
        obj = draw(service_objects(i))
        unique.setdefault((obj["metadata"]["namespace"], obj["metadata"]["name"]), obj)
    return list(unique.values())


def _engine(grafana_key: bool) -> Engine:
    plugins = make_plugin_set()
    if grafana_key:
        text = "detectors:\n  grafana:\n    config:\n      api_key_env: GRAFANA_API_KEY\n"
        config = load_config_text(text, "<test>", plugins)
    else:
        config = load_config(None, plugins)
    return Engine(config, plugins)


ENGINES = {False: _engine(False), True: _engine(True)}
DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
NAME_LABEL = re.compile(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?")
HOLMES_ENV = re.compile(r"{{\s*env\.([^}]*)\s*}}")
SECRET = re.compile(r"{{ env\.[A-Za-z_][A-Za-z0-9_]* }}")
PROPERTY = settings(
    max_examples=int(os.environ.get("DYNTOOLSET_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # the outcomes fixture counts across examples
    ],
)


def _walk(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, None
            yield from _walk(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)
    else:
        yield key, value


def _record(outcomes: Outcomes, services: list[Service], result: DiscoveryResult) -> None:
    """One observation per Service the snapshot accepted: what became of it."""
    found = {d.key: d.detector for d in result.discovered}
    skipped = {skip.service: skip.reason for skip in result.skips}
    for service in services:
        detector = found.get(service.key)
        if detector is None:
            outcomes.saw("snapshot accepted", f"skipped: {skipped.get(service.key, 'no_match')}")
        else:
            labels = ["custom discovered"] if detector == "custom" else []
            outcomes.saw("snapshot accepted", "discovered", f"found by {detector}", *labels)


@pytest.mark.outcomes(
    {"snapshot accepted": 0.7, "discovered": ACCEPT_SHARE, "custom discovered": 0.1}
)
@PROPERTY
@given(clusters(), st.booleans(), st.randoms(use_true_random=False))
def test_any_services_give_valid_deterministic_documents(
    outcomes: Outcomes, objects: list[dict[str, Any]], grafana_key: bool, rnd: Any
) -> None:
    engine = ENGINES[grafana_key]
    services = []
    for obj in objects:
        # Names, namespaces and ports no API server accepts are refused by the
        # snapshot (as they would be by the API server); nothing else may raise.
        try:
            services.append(service_from_object(obj))
        except SnapshotError:
            meta = obj["metadata"]
            ports_ok = all(
                (not p.get("name") or DNS_LABEL.fullmatch(p["name"]))
                and p.get("protocol", "TCP") in ("TCP", "UDP", "SCTP")
                for p in obj["spec"]["ports"]
            )
            assert not (
                NAME_LABEL.fullmatch(meta["name"])
                and DNS_LABEL.fullmatch(meta["namespace"])
                and ports_ok
            )
            outcomes.saw("refused by the snapshot")
    result = engine.discover(services)
    assert result.failures == []
    _record(outcomes, services, result)
    documents = engine.cycle(
        services, formats=["holmesgpt", "kubernaut"], configmap=False
    ).documents

    # Same input again, and shuffled: byte-identical.
    shuffled = list(services)
    rnd.shuffle(shuffled)
    assert engine.discover(shuffled).discovered == result.discovered
    assert (
        engine.cycle(shuffled, formats=["holmesgpt", "kubernaut"], configmap=False).documents
        == documents
    )

    holmes_text = documents["custom_toolset.yaml"]
    holmes_text.encode("utf-8")
    data = yaml.safe_load(holmes_text)
    assert data == holmesgpt.build_document(result.discovered)
    assert list(data) == ["toolsets"]
    toolsets = data["toolsets"]
    assert toolsets and all(isinstance(name, str) for name in toolsets)

    # Nothing the detectors produced is dropped on the way.
    wanted = Counter(spec.kind for found in result.discovered for spec in found.toolsets)
    for kind in BUILTIN_URL_KEYS:
        entry = toolsets.get(kind)
        if not wanted[kind]:
            assert entry is None
            continue
        assert entry is not None and set(entry) == {"enabled", "config"}
        url_key = BUILTIN_URL_KEYS[kind]
        if wanted[kind] == 1:
            assert isinstance(entry["config"][url_key], str)
        else:
            instances = entry["config"]["instances"]
            assert len(instances) == wanted[kind]
            assert len({i["name"] for i in instances}) == wanted[kind]
            assert all(isinstance(i[url_key], str) for i in instances)
    http_names = [n for n in toolsets if n not in BUILTIN_URL_KEYS]
    if not result.discovered:
        assert http_names == [holmesgpt.PLACEHOLDER_NAME]
    else:
        assert len(http_names) == wanted[HTTP_KIND]
        tools = {n.replace("/", "_").replace("-", "_") + "_request" for n in http_names}
        assert len(tools) == len(http_names)
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", t) for t in tools), tools
        for name in http_names:
            entry = toolsets[name]
            assert set(entry) == {"type", "enabled", "description", "llm_instructions", "config"}
            assert entry["type"] == "http" and entry["enabled"] is True
            [endpoint] = entry["config"]["endpoints"]
            assert endpoint["methods"] == ["GET"]
            [host] = endpoint["hosts"]
            assert holmesgpt.host_pattern_problem(host) is None
    for key, value in _walk(data):
        assert "." not in key
        if isinstance(value, str) and HOLMES_ENV.search(value):
            assert key == "api_key" and SECRET.fullmatch(value) and grafana_key

    kubernaut_text = documents["toolset.json"]
    kubernaut_text.encode("utf-8")
    tools_doc = json.loads(kubernaut_text)
    assert tools_doc == kubernaut.build_document(result.discovered)
    tools = tools_doc["tools"]
    assert len(tools) == len(result.discovered)
    assert len({t["name"] for t in tools}) == len(tools)
    for tool in tools:
        assert list(tool) == ["name", "type", "endpoint", "description", "namespace", "metadata"]
        assert all(isinstance(v, str) for v in tool.values() if not isinstance(v, dict))
        assert all(isinstance(v, str) for v in tool["metadata"].values())

    # The ConfigMap the engine would write, with a fixed stamp, is stable too.
    first = engine.cycle(services, now="2026-01-01T00:00:00Z").merge
    second = engine.cycle(shuffled, now="2026-01-01T00:00:00Z").merge
    assert first is not None and second is not None
    assert first.configmap == second.configmap
