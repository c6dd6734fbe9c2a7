"""The bundled example cluster (examples/cluster) finds exactly the backends its files describe."""

from __future__ import annotations

from pathlib import Path

from dyntoolset.errors import InvalidService
from dyntoolset.manifests import read_manifests
from dyntoolset.snapshot import service_from_object

from ._support import DETECTORS, ctx_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cluster"


def test_example_cluster_discovery() -> None:
    report = read_manifests([str(EXAMPLE)])
    assert report.errors == []
    kinds = {obj.kind for obj in report.objects}
    assert {"Service", "Deployment"} <= kinds  # other kinds are present, and ignored
    found: dict[str, tuple[str, str, str]] = {}
    invalid: dict[str, str] = {}
    services = [service_from_object(o.obj) for o in report.objects if o.kind == "Service"]
    # 50-*.yaml and later: Services only plugins find, near misses for the built-ins.
    assert len(services) == len({s.key for s in services}) == 36
    for svc in services:
        for detector in DETECTORS:  # priority order; the first match wins
            try:
                result = detector.detect(svc, ctx_for(detector))
            except InvalidService as exc:
                invalid[svc.key] = exc.reason
                break
            if result is not None:
                found[svc.key] = (result.detector, result.type, result.endpoint)
                break
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
    assert list(invalid) == ["shop/reports"]
    assert "kubernaut.io/toolset-endpoint" in invalid["shop/reports"]
