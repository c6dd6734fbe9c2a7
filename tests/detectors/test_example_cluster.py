"""The bundled example cluster (examples/cluster) finds exactly the backends its files describe."""

from __future__ import annotations

from pathlib import Path

from dyntoolset import Engine, load_config
from dyntoolset.manifests import read_manifests
from dyntoolset.snapshot import service_from_object
from dyntoolset.testing import make_plugin_set

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster"


def test_example_cluster_discovery() -> None:
    report = read_manifests([str(EXAMPLE)])
    assert report.errors == []
    kinds = {obj.kind for obj in report.objects}
    assert {"Service", "Deployment"} <= kinds  # other kinds are present, and ignored
    services = [service_from_object(o.obj) for o in report.objects if o.kind == "Service"]
    assert len(services) == len({s.key for s in services}) == 58
    # The engine as the CLI builds it: every built-in at its default priority.
    plugins = make_plugin_set()
    result = Engine(load_config(None, plugins), plugins).discover(services)
    assert result.failures == []
    found = {d.key: (d.detector, d.type, d.endpoint) for d in result.discovered}
    assert found == {
        "monitoring/kube-prometheus-stack-prometheus": (
            "prometheus",
            "prometheus",
            "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090",
        ),
        "monitoring/kube-prometheus-stack-grafana": (
            "grafana",
            "grafana",
            "http://kube-prometheus-stack-grafana.monitoring.svc.cluster.local:80",
        ),
        "thanos/thanos-query": (
            "prometheus",
            "prometheus",
            "http://thanos-query.thanos.svc.cluster.local:9090",
        ),
        "tracing/jaeger-query": (
            "jaeger",
            "jaeger",
            "http://jaeger-query.tracing.svc.cluster.local:80",
        ),
        "elastic/logs-es-http": (
            "elasticsearch",
            "elasticsearch",
            "https://logs-es-http.elastic.svc.cluster.local:9200",
        ),
        "shop/billing-api": (
            "custom",
            "billing-api",
            "http://billing-api.shop.svc.cluster.local:8080",
        ),
        "logging/loki-gateway": (
            "custom",
            "loki",
            "http://loki-gateway.logging.svc.cluster.local:80",
        ),
    }
    assert dict(result.skip_counts) == {
        "no_match": 50,
        "namespace_filtered": 0,
        "annotation_filtered": 0,
        "invalid": 1,
    }
    [skip] = result.skips
    assert (skip.service, skip.reason, skip.detector) == ("shop/reports", "invalid", "custom")
    assert "kubernaut.io/toolset-endpoint" in skip.detail
