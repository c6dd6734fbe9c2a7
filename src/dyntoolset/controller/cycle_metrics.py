"""Turn one reconcile's :class:`~dyntoolset.pipeline.Cycle` into metric updates.

One place updates the discovery metrics (BR-TOOLSET-041) and their V1
aliases, so an alias can never drift from the V2 metric it mirrors; see
``docs/observability.md`` for the table of names.
"""

from __future__ import annotations

from dyntoolset.metrics import Metrics
from dyntoolset.pipeline import Cycle

__all__ = ["record_cycle"]


def record_cycle(metrics: Metrics, cycle: Cycle) -> None:
    """Record the discovery numbers of ``cycle`` (one call per reconcile that ran a cycle)."""
    discovery = cycle.discovery
    for detector, stats in discovery.detectors.items():
        metrics.detector_duration.labels(detector=detector).observe(stats.seconds)
        metrics.detector_services_found.labels(detector=detector).set(stats.found)
    for failure in discovery.failures:
        metrics.detector_errors.labels(
            detector=failure.detector, error_type=failure.error_type
        ).inc()
    # V1 alias of detector_errors_total summed over its labels.
    metrics.discovery_errors.inc(len(discovery.failures))
    for namespace, count in sorted(discovery.by_namespace().items()):
        metrics.discovery_services.labels(namespace=metrics.namespace_label(namespace)).inc(count)
    # V1 alias of discovery_services_total summed over namespaces.
    metrics.services_discovered.inc(len(discovery.discovered))
    for reason, count in discovery.skip_counts.items():
        metrics.discovery_skipped.labels(reason=reason).inc(count)
    metrics.discovery_duration.observe(discovery.seconds)
    metrics.tools_count.set(sum(len(d.toolsets) for d in cycle.emitted))
