"""HolmesGPT 0.45 loads what the plugin packages of ``plugins/`` add to the example cluster.

The engine runs the built-ins plus the tempo, alertmanager, mimir, loki,
opensearch and victorialogs plugins (as ``make_plugin_set`` classes, so other distributions installed on
the machine do not change the result) over ``examples/cluster``; the
HolmesGPT document is then loaded by ``holmes_probe.py`` under the holmes
interpreter (see ``test_holmesgpt_loads.py``): no invalid toolset, no config
a toolset's config classes reject, the expected toolsets and URLs, and with
``--check`` HolmesGPT's own prerequisite checks against a local backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from dyntoolset_alertmanager import AlertmanagerDetector
from dyntoolset_loki import LokiDetector
from dyntoolset_mimir import MimirDetector
from dyntoolset_opensearch import OpenSearchDetector
from dyntoolset_tempo import TempoDetector
from dyntoolset_victorialogs import VictoriaLogsDetector
from test_holmesgpt_loads import (  # the probe and its local backend
    _Backend,
    _served_by,
    backend,  # noqa: F401 - a fixture, used by name
    holmes_python,
    probe,
)

from dyntoolset import Engine, load_config_text, read_manifests, service_from_object
from dyntoolset.model import Discovered
from dyntoolset.render.holmesgpt import HolmesGPTRenderer
from dyntoolset.testing import make_plugin_set

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster"
CONFIG = (
    "detectors:\n"
    "  mimir:\n    config:\n      tenant: anonymous\n"
    "  loki:\n    config:\n      tenant: application\n"
)
PLUGIN_FINDS = {
    "tracing/tempo-query-frontend": "tempo",
    "monitoring/kube-prometheus-stack-alertmanager": "alertmanager",
    "mimir/mimir-query-frontend": "mimir",
    "loki/lokistack-dev-query-frontend-http": "loki",
    "audit/loki": "loki",
    "search/opensearch-cluster-master": "opensearch",
    "vlogs/vls-victoria-logs-single-server": "victorialogs",
}


def _discovered() -> list[Discovered]:
    plugins = make_plugin_set(
        TempoDetector,
        AlertmanagerDetector,
        MimirDetector,
        LokiDetector,
        OpenSearchDetector,
        VictoriaLogsDetector,
    )
    engine = Engine(load_config_text(CONFIG, "<test>", plugins), plugins)
    report = read_manifests([str(EXAMPLE)])
    services = [service_from_object(o.obj) for o in report.objects if o.kind == "Service"]
    return list(engine.cycle(services, formats=["holmesgpt"], configmap=False).emitted)


def test_the_plugins_find_their_services_and_the_built_ins_keep_theirs() -> None:
    taken = {d.key: d.detector for d in _discovered()}
    assert {k: v for k, v in taken.items() if v in PLUGIN_FINDS.values()} == PLUGIN_FINDS
    # The seven backends of the built-ins stay with them.
    assert taken["logging/loki-gateway"] == "custom"
    assert taken["monitoring/kube-prometheus-stack-prometheus"] == "prometheus"
    assert len(taken) == 7 + len(PLUGIN_FINDS)


def _toolsets(document: str) -> dict[str, Any]:
    toolsets: dict[str, Any] = yaml.safe_load(document)["toolsets"]
    return toolsets


def test_holmesgpt_loads_the_example_with_every_plugin(tmp_path: Path) -> None:
    document = HolmesGPTRenderer().render(_discovered())
    toolsets = _toolsets(document)
    assert toolsets["grafana/tempo"]["config"] == {
        "api_url": "http://tempo-query-frontend.tracing.svc.cluster.local:3200"
    }
    prometheus = {i["name"]: i for i in toolsets["prometheus/metrics"]["config"]["instances"]}
    assert prometheus["mimir/mimir-query-frontend"] == {
        "name": "mimir/mimir-query-frontend",
        "prometheus_url": "http://mimir-query-frontend.mimir.svc.cluster.local:8080/prometheus",
        "additional_headers": {"X-Scope-OrgID": "anonymous"},
    }
    loki = {i["name"]: i for i in toolsets["grafana/loki"]["config"]["instances"]}
    assert loki["loki/lokistack-dev-query-frontend-http"] == {
        "name": "loki/lokistack-dev-query-frontend-http",
        "api_url": "http://lokistack-dev-query-frontend-http.loki.svc.cluster.local:3100",
        "additional_headers": {"X-Scope-OrgID": "application"},
    }
    (alertmanager,) = [n for n in toolsets if n.startswith("alertmanager/")]
    assert toolsets["victorialogs"]["config"] == {
        "api_url": "http://vls-victoria-logs-single-server.vlogs.svc.cluster.local:9428"
    }
    for kind in ("elasticsearch/cluster", "elasticsearch/data"):
        urls = {i["name"]: i["api_url"] for i in toolsets[kind]["config"]["instances"]}
        assert urls == {
            "elastic/logs-es-http": "https://logs-es-http.elastic.svc.cluster.local:9200",
            "search/opensearch-cluster-master": (
                "https://opensearch-cluster-master.search.svc.cluster.local:9200"
            ),
        }

    report = probe(holmes_python(), tmp_path, document)

    assert report["invalid"] == {}
    assert report["missing"] == []
    assert report["config_errors"] == {}
    loaded = report["loaded"]
    assert loaded["grafana/tempo"]["class"] == "MultiInstanceGrafanaTempoToolset"
    assert loaded["grafana/loki"]["instances"] == [
        "audit/loki",
        "logging/loki-gateway",
        "loki/lokistack-dev-query-frontend-http",
    ]
    assert loaded["prometheus/metrics"]["instances"] == [
        "mimir/mimir-query-frontend",
        "monitoring/kube-prometheus-stack-prometheus",
        "thanos/thanos-query",
    ]
    for kind in ("elasticsearch/cluster", "elasticsearch/data"):
        assert loaded[kind]["instances"] == [
            "elastic/logs-es-http",
            "search/opensearch-cluster-master",
        ]
    assert loaded["victorialogs"]["class"] == "MultiInstanceVictoriaLogsToolset"
    assert loaded[alertmanager]["class"] == "HttpToolset"
    assert loaded[alertmanager]["status"] == "enabled", loaded[alertmanager]["error"]
    (tool,) = report["http_tools"][alertmanager]  # its one request tool, built
    assert tool.startswith("alertmanager_monitoring_") and tool.endswith("_request")


def test_the_plugin_toolsets_pass_holmesgpts_prerequisite_checks(
    tmp_path: Path,
    backend: str,  # noqa: F811 - the fixture imported above
) -> None:
    """HolmesGPT's start-up checks, for real, against a local backend: Mimir's
    instance is asked under /prometheus, and every plugin toolset is enabled."""
    ours = [d for d in _discovered() if d.detector in PLUGIN_FINDS.values()]
    _Backend.seen.clear()
    document = HolmesGPTRenderer().render(_served_by(ours, backend))

    report = probe(holmes_python(), tmp_path, document, "--check")

    assert report["invalid"] == {} and report["config_errors"] == {}
    not_enabled = {n: i["error"] for n, i in report["loaded"].items() if i["status"] != "enabled"}
    assert not_enabled == {}
    assert set(report["loaded"]) >= {"grafana/tempo", "grafana/loki", "prometheus/metrics"}
    asked = {path.split("?")[0] for path in _Backend.seen}
    assert any(p.startswith("/mimir/mimir-query-frontend/prometheus/api/v1/") for p in asked), asked
    assert any(p.startswith("/tracing/tempo-query-frontend/") for p in asked), asked
    assert any(p.startswith("/loki/lokistack-dev-query-frontend-http/") for p in asked), asked
    assert any(p.startswith("/search/opensearch-cluster-master/") for p in asked), asked
    assert set(report["loaded"]) >= {"elasticsearch/cluster", "elasticsearch/data"}
    assert "/vlogs/vls-victoria-logs-single-server/health" in asked, asked
