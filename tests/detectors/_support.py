"""Shared helpers for the detector tests: contexts and fixture Services."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dyntoolset.detector import DetectContext, Detector
from dyntoolset.detectors.custom import CustomDetector
from dyntoolset.detectors.elasticsearch import ElasticsearchDetector
from dyntoolset.detectors.grafana import GrafanaDetector
from dyntoolset.detectors.jaeger import JaegerDetector
from dyntoolset.detectors.prometheus import PrometheusDetector
from dyntoolset.model import Service
from dyntoolset.snapshot import service_from_object
from dyntoolset.testing import fixture_documents as documents_in

FIXTURES = Path(__file__).parent / "fixtures"

#: In default priority order, as the engine runs them.
DETECTORS: tuple[Detector, ...] = (
    PrometheusDetector(),
    GrafanaDetector(),
    JaegerDetector(),
    ElasticsearchDetector(),
    CustomDetector(),
)


def ctx_for(detector: Detector, **overrides: Any) -> DetectContext:
    """The context the engine builds for ``detector`` with default configuration."""
    values: dict[str, Any] = {
        "settings": type(detector).Settings(),
        "cluster_domain": "cluster.local",
        "health_path": detector.health_path,
    }
    # A health path given here is a configured one, as the engine marks it.
    values["health_path_configured"] = "health_path" in overrides
    values.update(overrides)
    return DetectContext(**values)


def fixture_documents() -> list[tuple[str, dict[str, Any]]]:
    """``(id, document)`` for every Service document of every fixture file."""
    return documents_in(FIXTURES)


def service(
    name: str = "svc",
    namespace: str = "ns",
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    ports: list[dict[str, Any]] | None = None,
    cluster_ip: str = "10.0.0.1",
    type_: str = "ClusterIP",
) -> Service:
    """A Service built through the same snapshot path as the engine."""
    spec: dict[str, Any] = {"type": type_, "clusterIP": cluster_ip}
    spec["ports"] = ports if ports is not None else [{"name": "http", "port": 8080}]
    return service_from_object(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(labels or {}),
                "annotations": dict(annotations or {}),
            },
            "spec": spec,
        }
    )
