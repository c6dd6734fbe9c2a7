"""The public library API: what the README promises embedders."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import yaml

import dyntoolset
from dyntoolset import Engine, service_from_object
from dyntoolset.manifests import read_manifests
from dyntoolset.testing import make_plugin_set

EXAMPLE = Path(__file__).parent.parent / "examples" / "cluster"


def test_readme_embedding_example():
    objects = [o.obj for o in read_manifests([str(EXAMPLE)]).objects if o.kind == "Service"]
    engine = Engine(dyntoolset.load_config(None, make_plugin_set()), make_plugin_set())
    services = [service_from_object(o) for o in objects]
    cycle = engine.cycle(services, existing=None, now="2026-01-01T00:00:00Z")
    assert sorted(d.key for d in cycle.discovery.discovered) == [
        "elastic/logs-es-http",
        "logging/loki-gateway",
        "monitoring/kube-prometheus-stack-grafana",
        "monitoring/kube-prometheus-stack-prometheus",
        "shop/billing-api",
        "thanos/thanos-query",
        "tracing/jaeger-query",
    ]
    merge = cycle.merge
    assert merge is not None and merge.changed and merge.created
    assert merge.configmap["data"] == dict(cycle.documents)

    # What the operator adds to the written ConfigMap is kept ("overrides.yaml
    # and foreign keys kept"), and overrides.yaml wins in the HolmesGPT document.
    written = copy.deepcopy(merge.configmap)
    overrides = "toolsets:\n  grafana/dashboards:\n    enabled: false\n"
    written["data"]["overrides.yaml"] = overrides
    written["data"]["runbook.md"] = "# ours\n"
    fewer = [s for s in services if s.key != "tracing/jaeger-query"]
    update = engine.cycle(fewer, existing=written, now="2026-02-01T00:00:00Z").merge
    assert update is not None and update.changed and not update.created
    data = update.configmap["data"]
    assert data["overrides.yaml"] == overrides and data["runbook.md"] == "# ours\n"
    assert yaml.safe_load(data["custom_toolset.yaml"])["toolsets"]["grafana/dashboards"] == {
        "enabled": False,
        "config": {
            "api_url": "http://kube-prometheus-stack-grafana.monitoring.svc.cluster.local:80"
        },
    }
    assert "jaeger-query.tracing" not in [
        t["name"] for t in json.loads(data["toolset.json"])["tools"]
    ]

    # The same discovery again: nothing to write.
    again = engine.cycle(fewer, existing=update.configmap, now="2026-03-01T00:00:00Z").merge
    assert again is not None
    assert not again.changed
    assert again.configmap == update.configmap


def test_every_public_name_is_exported_and_documented():
    for name in dyntoolset.__all__:
        obj = getattr(dyntoolset, name)
        if callable(obj) and not name.startswith("_"):
            assert obj.__doc__, f"dyntoolset.{name} has no docstring"


def test_importing_the_library_loads_neither_the_testing_kit_nor_the_kubernetes_client():
    code = (
        "import sys, dyntoolset, dyntoolset.cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('dyntoolset.testing', 'kubernetes'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_is_typed():
    assert (Path(dyntoolset.__file__).parent / "py.typed").exists()
