"""HolmesGPT 0.45 itself loads what the holmesgpt renderer writes.

The document is written to a file and loaded by ``holmes_probe.py`` running
under a separate interpreter with holmesgpt installed (it cannot share our
venv: it pins kubernetes<33). Point ``DYNTOOLSET_HOLMES_PYTHON`` at it::

    export DYNTOOLSET_HOLMES_PYTHON="$(scripts/holmes-venv.sh)"

Without it a plain ``pytest`` skips them with that command as the reason;
under ``nox`` and CI (``pytest --require-integration``) they fail on purpose:
they are the proof that the output is loadable, and a skip there would hide
its absence.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pytest
from render_samples import found, realistic

from dyntoolset.model import Discovered
from dyntoolset.render.holmesgpt import HolmesGPTRenderer

pytestmark = pytest.mark.holmesgpt

PROBE = Path(__file__).with_name("holmes_probe.py")
HOLMES_VERSION = "0.45.0"

EXPECTED = {
    "prometheus/metrics": "MultiInstancePrometheusToolset",
    "grafana/dashboards": "MultiInstanceGrafanaToolset",
    "grafana/loki": "MultiInstanceGrafanaLokiToolset",
    "grafana/tempo": "MultiInstanceGrafanaTempoToolset",
    "elasticsearch/cluster": "MultiInstanceElasticsearchClusterToolset",
    "elasticsearch/data": "MultiInstanceElasticsearchDataToolset",
    "jaeger/tracing/jaeger-query": "HttpToolset",
    "billing/payments/billing-api": "HttpToolset",
    "inventory/shop-eu/inventory": "HttpToolset",
    "inventory/shop-us/inventory": "HttpToolset",
}

HOSTILE = (
    "line one\nline two: {{ env.HOLMES_PROBE_SECRET }} # not a comment\n"
    "!!python/object/apply:os.system ['id'] &anchor *alias\n---\n..." + "x" * 10240
)


@functools.cache
def holmes_python() -> str:
    """The holmes interpreter, checked once; called inside each test (not as a
    fixture) so a missing setup is reported as a test failure, not a setup error."""
    python = os.environ.get("DYNTOOLSET_HOLMES_PYTHON", "")
    if not python:
        pytest.fail(
            "DYNTOOLSET_HOLMES_PYTHON is not set. These tests prove that HolmesGPT "
            f"{HOLMES_VERSION} loads the holmesgpt renderer's output and need an "
            "interpreter with holmesgpt installed, outside the dev venv. Create it and "
            'set the variable with:  export DYNTOOLSET_HOLMES_PYTHON="$(scripts/holmes-venv.sh)"',
            pytrace=False,
        )
    check = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('holmesgpt'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0 or check.stdout.strip() != HOLMES_VERSION:
        pytest.fail(
            f"DYNTOOLSET_HOLMES_PYTHON={python} has no holmesgpt=={HOLMES_VERSION} "
            f"({check.stdout.strip() or check.stderr.strip()[-300:]}); "
            "recreate it with scripts/holmes-venv.sh",
            pytrace=False,
        )
    return python


def probe(python: str, tmp_path: Path, document: str, *args: str) -> dict[str, Any]:
    path = tmp_path / "custom_toolset.yaml"
    path.write_text(document, encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),  # keeps ~/.holmes of the machine out of it
        # A file at HolmesGPT's default location would be loaded as well.
        "CUSTOM_TOOLSET_LOCATION": str(tmp_path / "absent.yaml"),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download at import time
        "GRAFANA_API_KEY": "probe-grafana-key",  # what "{{ env.GRAFANA_API_KEY }}" names
        # What test_credentials_load_in_holmesgpt's settings name.
        "ES_PASSWORD": "probe-es-password",
        "PROM_TOKEN": "probe-prom-token",
        "GRAFANA_PASSWORD": "probe-grafana-password",
        "HOLMES_PROBE_SECRET": "LEAKED-SECRET",
        # What the queue plugins' tests (test_queue_plugins_load.py) name.
        "RABBITMQ_PASSWORD": "probe-rabbitmq-password",
        "KAFKA_PASSWORD": "probe-kafka-password",
        "NO_PROXY": "*",
    }
    result = subprocess.run(
        [python, str(PROBE), str(path), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"probe failed:\n{result.stderr[-3000:]}"
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_realistic_document_loads_with_zero_invalid_toolsets(tmp_path: Path) -> None:
    report = probe(holmes_python(), tmp_path, HolmesGPTRenderer().render(realistic()))

    assert report["invalid"] == {}
    assert report["missing"] == []
    assert report["config_errors"] == {}
    loaded = report["loaded"]
    assert {name: info["class"] for name, info in loaded.items()} == EXPECTED
    assert all(info["enabled"] for info in loaded.values())
    assert loaded["prometheus/metrics"]["instances"] == [
        "monitoring/kube-prometheus-stack-prometheus",
        "team-a/prometheus",
    ]
    assert loaded["elasticsearch/data"]["instances"] == [
        "logging/elasticsearch-master",
        "search/quickstart-es-http",
    ]
    # One server: the flat config, which HolmesGPT runs as instance "default".
    assert loaded["grafana/dashboards"]["instances"] == []
    assert report["http_tools"] == {
        "billing/payments/billing-api": ["billing_payments_billing_api_request"],
        "inventory/shop-eu/inventory": ["inventory_shop_eu_inventory_request"],
        "inventory/shop-us/inventory": ["inventory_shop_us_inventory_request"],
        "jaeger/tracing/jaeger-query": ["jaeger_tracing_jaeger_query_request"],
    }
    for name, info in loaded.items():
        if info["class"] == "HttpToolset":
            assert info["status"] == "enabled", (name, info["error"])


class _Backend(BaseHTTPRequestHandler):
    """Answers every GET like a healthy Prometheus/Grafana/Elasticsearch/Loki/Tempo would
    for HolmesGPT's prerequisite checks: 200 with a JSON object."""

    seen: list[str] = []
    #: (path, Authorization header) of every request.
    auth: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        _Backend.seen.append(self.path)
        _Backend.auth.append((self.path, self.headers.get("Authorization", "")))
        body = json.dumps(
            {
                "status": "success",
                "data": {"resultType": "vector", "result": []},
                "cluster_name": "probe",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _served_by(items: list[Discovered], base: str) -> list[Discovered]:
    """``items`` with every URL pointed at ``base`` (a distinct path per Service)."""
    moved = []
    for item in items:
        url = f"{base}/{item.service.namespace}/{item.service.name}"
        old = item.endpoint
        specs = tuple(
            attrs.evolve(
                spec,
                config=json.loads(json.dumps(dict(spec.config)).replace(old, url)),
                llm_instructions=spec.llm_instructions.replace(old, url),
            )
            for spec in item.toolsets
        )
        moved.append(attrs.evolve(item, endpoint=url, toolsets=specs))
    return moved


def test_every_toolset_passes_holmesgpts_prerequisite_checks(tmp_path: Path, backend: str) -> None:
    """The full check HolmesGPT runs at start-up: configs parsed by each toolset's own
    code, one request per instance to its health endpoint, tools built. Hostile text
    in a custom Service rides along and must neither break loading nor expand."""
    hostile = found(
        "hostile",
        "ns",
        "custom",
        type_="weird",
        port=8080,
        http=True,
        description=HOSTILE,
        annotations={"kubernaut.io/toolset-type": HOSTILE},
    )
    _Backend.seen.clear()
    items = _served_by([*realistic(), hostile], backend)
    document = HolmesGPTRenderer().render(items)

    report = probe(holmes_python(), tmp_path, document, "--check")

    assert report["invalid"] == {}
    assert report["config_errors"] == {}
    loaded = report["loaded"]
    assert set(loaded) == {*EXPECTED, "weird/ns/hostile"}
    not_enabled = {n: i["error"] for n, i in loaded.items() if i["status"] != "enabled"}
    assert not_enabled == {}
    # Two Prometheus servers: HolmesGPT adds the instance-listing tool.
    assert "prometheus_metrics_list_instances" in loaded["prometheus/metrics"]["tools"]
    # Every server of a built-in toolset was asked, at its own URL.
    asked = {"/".join(path.split("/")[:3]) for path in _Backend.seen}
    assert asked == {
        f"/{item.service.namespace}/{item.service.name}"
        for item in items
        if any(spec.kind != "http" for spec in item.toolsets)
    }
    assert "LEAKED-SECRET" not in document
    assert "LEAKED-SECRET" not in json.dumps(report)


def test_probe_reports_what_holmesgpt_rejects(tmp_path: Path) -> None:
    """The probe is not vacuous: an unknown name without type, a secret placeholder
    naming a missing variable, a bad HTTP host and a built-in instance without its
    URL are all reported."""
    document = (
        "toolsets:\n"
        "  not-a-builtin:\n"
        "    enabled: true\n"
        "    config: {url: http://x}\n"
        "  grafana/dashboards:\n"
        "    enabled: true\n"
        "    config: {instances: [{name: a, api_key: k}]}\n"
        "  grafana/loki:\n"
        "    enabled: true\n"
        "    config: {api_url: 'http://x', api_key: '{{ env.DYNTOOLSET_PROBE_UNSET }}'}\n"
        "  ok/http:\n"
        "    type: http\n"
        "    enabled: true\n"
        "    config: {endpoints: [{hosts: ['ftp://x:99999']}]}\n"
    )
    report = probe(holmes_python(), tmp_path, document)

    assert set(report["invalid"]) == {"not-a-builtin", "grafana/loki"}
    assert "DYNTOOLSET_PROBE_UNSET does not exist" in report["invalid"]["grafana/loki"]
    assert set(report["config_errors"]) == {"grafana/dashboards"}
    assert report["http_tools"] == {"ok/http": []}
    assert re.search("Unsupported scheme|Invalid HTTP", report["loaded"]["ok/http"]["error"])


def test_the_readme_example_output_loads_in_holmesgpt(tmp_path: Path) -> None:
    """`dyntoolset discover -f examples/cluster` prints a ConfigMap whose HolmesGPT key loads."""
    import yaml

    root = Path(__file__).parents[2]
    env = {**os.environ, "DYNTOOLSET_LOAD_PLUGINS": ""}  # the built-ins, as on a fresh install
    result = subprocess.run(
        [sys.executable, "-m", "dyntoolset", "discover", "-f", str(root / "examples" / "cluster")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    document = yaml.safe_load(result.stdout)["data"]["custom_toolset.yaml"]
    report = probe(holmes_python(), tmp_path, document)
    assert report["invalid"] == {} and report["config_errors"] == {}
    assert set(report["loaded"]) == {
        "prometheus/metrics",
        "grafana/dashboards",
        "grafana/loki",
        "elasticsearch/cluster",
        "elasticsearch/data",
        "billing-api/shop/billing-api",
        "jaeger/tracing/jaeger-query",
    }


def _engine(config_text: str = "") -> Any:
    from dyntoolset import Engine, load_config
    from dyntoolset.config import load_config_text
    from dyntoolset.testing import make_plugin_set

    plugins = make_plugin_set()
    if config_text:
        return Engine(load_config_text(config_text, "<test>", plugins), plugins)
    return Engine(load_config(None, plugins), plugins)


def _opt_in(type_: str) -> dict[str, str]:
    return {"kubernaut.io/toolset": "enabled", "kubernaut.io/toolset-type": type_}


def _crowded_cluster() -> list[Any]:
    """Services at the edges: 50 kube-prometheus-stack Prometheus servers (names
    up to the 63-character limit), a custom Service typed ``prometheus``, two
    Grafanas (one custom), HTTP toolsets whose names collide after truncation
    and a pair whose tool names collide (``a-b``/``c`` and ``a``/``b-c``)."""
    from dyntoolset.testing import make_service

    services = []
    for i in range(50):
        namespace = f"team-{i:02d}" if i % 2 else f"team-{i:02d}-" + "n" * (55 - len(str(i)))
        name = "kps-prometheus" if i % 3 else "p" * 50 + f"{i:02d}-prometheus"
        services.append(
            make_service(
                name,
                namespace[:63],
                labels={"app": "kps-prometheus", "app.kubernetes.io/part-of": "kps"},
                ports=[(9090, "http-web"), (8080, "reloader-web")],
            )
        )
    services.append(make_service("metrics-proxy", "platform", annotations=_opt_in("prometheus")))
    services.append(
        make_service(
            "grafana",
            "monitoring",
            labels={"app.kubernetes.io/name": "grafana"},
            ports=[(80, "http-web")],
        )
    )
    services.append(make_service("dashboards", "team-00", annotations=_opt_in("grafana")))
    long_ns = "x" * 63
    for suffix in "ab":
        services.append(
            make_service("s" * 62 + suffix, long_ns, annotations=_opt_in("billing-api-v2-extended"))
        )
    services.append(make_service("c", "a-b", annotations=_opt_in("t")))
    services.append(make_service("b-c", "a", annotations=_opt_in("t")))
    services.append(
        make_service(
            "j" * 63,
            long_ns,
            labels={"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/component": "query"},
            ports=[(16686, "http-query")],
        )
    )
    return services


def test_crowded_cluster_loads_with_zero_invalid_toolsets(tmp_path: Path) -> None:
    """Through the detectors and the renderer: every server is an instance,
    every HTTP toolset has exactly one tool, named uniquely within 64 characters."""
    engine = _engine("detectors:\n  grafana:\n    config:\n      api_key_env: GRAFANA_API_KEY\n")
    cycle = engine.cycle(_crowded_cluster(), formats=["holmesgpt"], configmap=False)
    document = cycle.documents["custom_toolset.yaml"]

    report = probe(holmes_python(), tmp_path, document)

    assert report["invalid"] == {}
    assert report["missing"] == []
    assert report["config_errors"] == {}
    loaded = report["loaded"]
    prometheus = loaded["prometheus/metrics"]["instances"]
    assert len(prometheus) == len(set(prometheus)) == 51
    assert "platform/metrics-proxy" in prometheus
    assert loaded["grafana/dashboards"]["instances"] == ["monitoring/grafana", "team-00/dashboards"]
    http = {name: tools for name, tools in report["http_tools"].items()}
    assert len(http) == 5
    tools = [tool for names in http.values() for tool in names]
    assert all(len(names) == 1 for names in http.values()), http
    assert len(set(tools)) == 5
    assert all(len(tool) <= 64 for tool in tools), tools
    for name in http:
        assert loaded[name]["status"] == "enabled", (name, loaded[name]["error"])


def test_grafana_without_api_key_and_a_custom_prometheus_pass_checks(
    tmp_path: Path, backend: str
) -> None:
    """No ``api_key_env``: no key is written and Grafana's check passes anonymously;
    a Service annotated ``prometheus`` is one more instance, probed at its own URL."""
    from dyntoolset.testing import make_service

    engine = _engine()
    services = [
        make_service(
            "grafana",
            "monitoring",
            labels={"app.kubernetes.io/name": "grafana"},
            ports=[(80, "http-web")],
        ),
        make_service(
            "kps-prometheus",
            "monitoring",
            labels={"app": "kps-prometheus", "app.kubernetes.io/part-of": "kps"},
            ports=[(9090, "http-web")],
        ),
        make_service("metrics-proxy", "platform", annotations=_opt_in("prometheus")),
    ]
    discovered = engine.discover(services).discovered
    assert [d.detector for d in discovered] == ["grafana", "prometheus", "custom"]
    _Backend.seen.clear()
    document = HolmesGPTRenderer().render(_served_by(discovered, backend))
    assert "api_key" not in document

    report = probe(holmes_python(), tmp_path, document, "--check")

    assert report["invalid"] == {} and report["config_errors"] == {}
    loaded = report["loaded"]
    assert {n: i["status"] for n, i in loaded.items()} == {
        "grafana/dashboards": "enabled",
        "prometheus/metrics": "enabled",
    }
    assert loaded["prometheus/metrics"]["instances"] == [
        "monitoring/kps-prometheus",
        "platform/metrics-proxy",
    ]
    asked = {"/".join(path.split("/")[:3]) for path in _Backend.seen}
    assert asked == {"/monitoring/grafana", "/monitoring/kps-prometheus", "/platform/metrics-proxy"}


def test_credentials_load_in_holmesgpt(tmp_path: Path) -> None:
    """Basic auth with a self-signed CA (ECK), a bearer token (Prometheus) and
    Grafana's user and password load with zero invalid toolsets: HolmesGPT
    accepts every key and expands every placeholder."""
    from dyntoolset.testing import make_service

    engine = _engine(
        "detectors:\n"
        "  elasticsearch: {config: {password_env: ES_PASSWORD, verify_ssl: false}}\n"
        "  prometheus: {config: {token_env: PROM_TOKEN, verify_ssl: false}}\n"
        "  grafana: {config: {username: admin, password_env: GRAFANA_PASSWORD}}\n"
    )
    services = [
        make_service(
            "logs-es-http",
            "elastic",
            labels={"common.k8s.elastic.co/type": "elasticsearch"},
            ports=[(9200, "https")],
        ),
        make_service(
            "prom",
            "mon",
            labels={"app.kubernetes.io/name": "prometheus"},
            ports=[(9090, "http-web")],
        ),
        make_service(
            "grafana", "mon", labels={"app.kubernetes.io/name": "grafana"}, ports=[(80, "http-web")]
        ),
    ]
    cycle = engine.cycle(services, formats=["holmesgpt"], configmap=False)
    document = cycle.documents["custom_toolset.yaml"]
    assert "probe-" not in document

    report = probe(holmes_python(), tmp_path, document)

    assert report["invalid"] == {}
    assert report["missing"] == []
    assert report["config_errors"] == {}
    assert set(report["loaded"]) == {
        "elasticsearch/cluster",
        "elasticsearch/data",
        "prometheus/metrics",
        "grafana/dashboards",
    }
    assert all(t["enabled"] for t in report["loaded"].values())


def test_holmesgpt_sends_the_credentials_the_placeholders_name(
    tmp_path: Path, backend: str
) -> None:
    """With ``--check`` HolmesGPT calls each backend: it expands every placeholder
    from its environment and sends basic auth as ``elastic`` (Elasticsearch), the
    bearer token (Prometheus) and Grafana's user, so the keys are the ones it reads."""
    import base64

    from dyntoolset.testing import make_service

    engine = _engine(
        "detectors:\n"
        "  elasticsearch: {config: {password_env: ES_PASSWORD, verify_ssl: false}}\n"
        "  prometheus: {config: {token_env: PROM_TOKEN}}\n"
        "  grafana: {config: {username: admin, password_env: GRAFANA_PASSWORD}}\n"
    )
    services = [
        make_service(
            "logs-es-http",
            "elastic",
            labels={"common.k8s.elastic.co/type": "elasticsearch"},
            ports=[(9200, "https")],
        ),
        make_service(
            "prom", "mon", labels={"app.kubernetes.io/name": "prometheus"}, ports=[(9090, "web")]
        ),
        make_service(
            "grafana", "mon", labels={"app.kubernetes.io/name": "grafana"}, ports=[(80, "http-web")]
        ),
    ]
    discovered = engine.discover(services).discovered
    _Backend.auth.clear()
    document = HolmesGPTRenderer().render(_served_by(discovered, backend))
    assert "probe-" not in document

    probe(holmes_python(), tmp_path, document, "--check")

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    sent: dict[str, set[str]] = {}
    for path, header in _Backend.auth:
        sent.setdefault("/".join(path.split("/")[:3]), set()).add(header)
    assert sent == {
        "/elastic/logs-es-http": {basic("elastic", "probe-es-password")},
        "/mon/prom": {"Bearer probe-prom-token"},
        "/mon/grafana": {basic("admin", "probe-grafana-password")},
    }
