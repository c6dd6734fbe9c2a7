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

Labels are drawn so that every detector gets to match (chart labels, ports),
and the ``kubernaut.io/toolset*`` annotations take valid, borderline and
hostile values.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from render_samples import HOSTILE_TEXT

from dyntoolset import Engine, load_config, service_from_object
from dyntoolset.config import parse_and_resolve
from dyntoolset.render import holmesgpt, kubernaut
from dyntoolset.snapshot import SnapshotError
from dyntoolset.testing import make_plugin_set
from dyntoolset.toolsets import BUILTIN_URL_KEYS, HTTP_KIND

HOSTILE = HOSTILE_TEXT

DNS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
#: Service names are RFC 1035 labels: they start with a letter.
NAME = st.from_regex(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
hostile = st.sampled_from(HOSTILE) | st.text(max_size=30)
anytext = DNS | hostile | st.builds(lambda a, b: a + b, st.sampled_from(HOSTILE), DNS)

#: Label sets that make each built-in detector (or a near miss) look twice.
CHART_LABELS: list[dict[str, str]] = [
    {},
    {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/component": "server"},
    {"app.kubernetes.io/name": "prometheus"},
    {"app": "prometheus", "component": "server"},
    {"app": "kps-prometheus", "app.kubernetes.io/part-of": "kps"},
    {"app.kubernetes.io/name": "thanos", "app.kubernetes.io/component": "query"},
    {"app.kubernetes.io/name": "thanos-query"},
    {"app.kubernetes.io/name": "vmselect"},
    {"app.kubernetes.io/name": "victoria-metrics-single"},
    {"app.kubernetes.io/name": "victoria-metrics-cluster", "app": "vmselect"},
    {"app.kubernetes.io/name": "kube-prometheus", "app.kubernetes.io/component": "prometheus"},
    {"app.kubernetes.io/name": "grafana"},
    {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/component": "grafana"},
    {"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/component": "query"},
    {"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/component": "all-in-one"},
    {"app": "jaeger", "app.kubernetes.io/component": "service-query"},
    {"common.k8s.elastic.co/type": "elasticsearch"},
    {"chart": "elasticsearch", "app": "es-master"},
    {"app.kubernetes.io/name": "elasticsearch", "app.kubernetes.io/component": "master"},
]

PORT_NAMES = [
    "",
    "http",
    "https",
    "web",
    "http-web",
    "grafana",
    "query",
    "http-query",
    "tcp-rest-api",
    "grpc",
    "tls",
]
PORT_NUMBERS = [80, 443, 3000, 8080, 8428, 8481, 9090, 9091, 9200, 9300, 16686, 10901]

ENABLED = st.sampled_from(["enabled", "true", "TRUE", " enabled ", "disabled", "false", ""])
TYPES = st.sampled_from(
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
        "a" * 64,
        "Prometheus",
        "-x-",
    ]
)
HEALTH = st.sampled_from(["/", "/healthz", "/ready?full=1", "//evil", "/../x", "/%2e%2e/"])


@st.composite
def endpoints(draw: st.DrawFn, name: str, namespace: str) -> str:
    scheme = draw(st.sampled_from(["http", "https", "ftp", "HTTP"]))
    host = draw(
        st.sampled_from(
            [
                f"{name}.{namespace}",
                f"{name}.{namespace}.svc",
                f"{name}.{namespace}.svc.cluster.local",
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
    path = draw(st.sampled_from(["", "/", "/api", "/api/v1/", "/a/../b", "/%2F", "/a b", "/é"]))
    return f"{scheme}://{host}{port}{path}"


@st.composite
def service_objects(draw: st.DrawFn, index: int) -> dict[str, Any]:
    name = draw(NAME | anytext) if draw(st.booleans()) else f"svc-{index}"
    namespace = draw(st.sampled_from(["monitoring", "team-a", "default"]) | anytext)
    if not name:
        name = f"svc-{index}"
    labels = dict(draw(st.sampled_from(CHART_LABELS)))
    labels.update(draw(st.dictionaries(anytext, anytext, max_size=2)))
    annotations: dict[str, str] = {}
    if draw(st.booleans()):
        annotations["kubernaut.io/toolset"] = draw(ENABLED | hostile)
        if draw(st.integers(0, 9)):
            annotations["kubernaut.io/toolset-type"] = draw(TYPES | hostile)
        if draw(st.booleans()):
            annotations["kubernaut.io/toolset-endpoint"] = draw(
                endpoints(name, namespace) | hostile
            )
        if draw(st.booleans()):
            annotations["kubernaut.io/toolset-health-path"] = draw(HEALTH | hostile)
    if draw(st.integers(0, 4)) == 0:
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
    annotations.update(draw(st.dictionaries(anytext, anytext, max_size=2)))
    ports = [
        {
            "port": draw(st.sampled_from(PORT_NUMBERS) | st.integers(1, 65535)),
            "name": draw(st.sampled_from(PORT_NAMES) | anytext),
            "protocol": draw(st.sampled_from(["TCP", "TCP", "UDP", "SCTP", "tcp"])),
            **({"appProtocol": "https"} if draw(st.integers(0, 5)) == 0 else {}),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    spec: dict[str, Any] = {
        "type": draw(st.sampled_from(["ClusterIP", "ClusterIP", "NodePort", "ExternalName"])),
        "clusterIP": draw(st.sampled_from(["10.96.0.1", "None", ""])),
        "ports": ports,
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


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
        config = parse_and_resolve(text, plugins, "<test>")
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
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
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


@PROPERTY
@given(clusters(), st.booleans(), st.randoms(use_true_random=False))
def test_any_services_give_valid_deterministic_documents(
    objects: list[dict[str, Any]], grafana_key: bool, rnd: Any
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
                (not p["name"] or DNS_LABEL.fullmatch(p["name"]))
                and p["protocol"] in ("TCP", "UDP", "SCTP")
                for p in obj["spec"]["ports"]
            )
            assert not (
                NAME_LABEL.fullmatch(meta["name"])
                and DNS_LABEL.fullmatch(meta["namespace"])
                and ports_ok
            )
    result = engine.discover(services)
    assert result.failures == []
    documents = engine.render(result.discovered, ["holmesgpt", "kubernaut"])

    # Same input again, and shuffled: byte-identical.
    shuffled = list(services)
    rnd.shuffle(shuffled)
    again = engine.discover(shuffled)
    assert engine.render(again.discovered, ["holmesgpt", "kubernaut"]) == documents

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
    first = engine.configmap(result.discovered, now="2026-01-01T00:00:00Z")
    second = engine.configmap(again.discovered, now="2026-01-01T00:00:00Z")
    assert first.configmap == second.configmap
