"""The metrics registry: exact names, labels, independent instances."""

from __future__ import annotations

import re

from dyntoolset.metrics import METRIC_NAMES, Metrics

LABELS = {
    "dynamic_toolset_health_check_failures_total": ("detector", "reason"),
    "dynamic_toolset_detector_duration_seconds": ("detector",),
    "dynamic_toolset_detector_services_found": ("detector",),
    "dynamic_toolset_detector_errors_total": ("detector", "error_type"),
    "dynamic_toolset_discovery_services_total": ("namespace",),
    "dynamic_toolset_discovery_skipped_total": ("reason",),
    "dynamic_toolset_configmap_reconciliations_total": ("result",),
    "dynamic_toolset_configmap_update_errors_total": ("error_type",),
    "dynamic_toolset_health_checks_total": ("detector", "result"),
}


def test_every_name_is_exposed_exactly() -> None:
    text = Metrics().exposition().decode()
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    assert set(METRIC_NAMES) <= families
    # Only the standard *_created companions besides.
    assert {f for f in families - set(METRIC_NAMES) if not f.endswith("_created")} == set()


def test_labels_are_as_specified() -> None:
    m = Metrics()
    m.health_check_failures.labels(detector="prometheus", reason="timeout").inc()
    m.detector_duration.labels(detector="grafana").observe(0.1)
    m.detector_services_found.labels(detector="grafana").set(2)
    m.detector_errors.labels(detector="x", error_type="timeout").inc()
    m.discovery_services.labels(namespace="monitoring").inc()
    m.discovery_skipped.labels(reason="no_match").inc()
    m.configmap_reconciliations.labels(result="success").inc()
    m.configmap_update_errors.labels(error_type="api_error").inc()
    m.health_checks.labels(detector="prometheus", result="ok").inc()
    text = m.exposition().decode()
    for name, labels in LABELS.items():
        sample = name + "_count" if name.endswith("_seconds") else name
        match = re.search(rf"^{sample}\{{([^}}]*)\}}", text, re.M)
        assert match, name
        assert tuple(re.findall(r'(\w+)="', match.group(1))) == labels, name


def test_instances_are_independent() -> None:
    a, b = Metrics(), Metrics()
    a.generations.inc()
    assert a.value("dynamic_toolset_generations_total") == 1
    assert b.value("dynamic_toolset_generations_total") == 0
