"""Every Prometheus metric dyntoolset exposes, declared in one place.

:class:`Metrics` owns its own ``CollectorRegistry`` instead of using
``prometheus_client``'s global one, so tests and embedders can create as many
independent instances as they like. All metrics are declared up front (a
metric that exists only after its first event makes dashboards and alerts
guess).

Names: the V1 names are kept for continuity and the V2 names
(BR-TOOLSET-041/042) are as written. ``prometheus_client`` adds ``_total`` to
a Counter's name itself, so counters are declared without it; the exposed
names are exactly the ones listed in :data:`METRIC_NAMES`.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["DEFAULT_NAMESPACE_LABEL_LIMIT", "METRIC_NAMES", "OTHER_NAMESPACE", "Metrics"]

#: Distinct ``namespace`` label values of ``discovery_services_total`` kept by
#: default; later namespaces are counted under :data:`OTHER_NAMESPACE`.
DEFAULT_NAMESPACE_LABEL_LIMIT = 100
#: The ``namespace`` label value of the namespaces beyond the limit.
OTHER_NAMESPACE = "other"

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: The exposed family names (counters with their ``_total``).
METRIC_NAMES = (
    # V1
    "dynamic_toolset_services_discovered_total",
    "dynamic_toolset_discovery_duration_seconds",
    "dynamic_toolset_discovery_errors_total",
    "dynamic_toolset_health_check_failures_total",
    "dynamic_toolset_configmap_updates_total",
    "dynamic_toolset_configmap_reconcile_duration_seconds",
    "dynamic_toolset_configmap_drift_detected_total",
    "dynamic_toolset_generations_total",
    "dynamic_toolset_tools_count",
    # V2
    "dynamic_toolset_detector_duration_seconds",
    "dynamic_toolset_detector_services_found",
    "dynamic_toolset_detector_errors_total",
    "dynamic_toolset_discovery_services_total",
    "dynamic_toolset_discovery_skipped_total",
    "dynamic_toolset_configmap_reconciliations_total",
    "dynamic_toolset_configmap_drift_detections_total",
    "dynamic_toolset_configmap_update_errors_total",
    # Health checks (beyond V1's failure counter)
    "dynamic_toolset_health_checks_total",
    "dynamic_toolset_health_check_cycle_duration_seconds",
    "dynamic_toolset_health_check_deadline_exceeded_total",
    # The controller
    "dynamic_toolset_leader_election_is_leader",
    "dynamic_toolset_cache_synced",
    "dynamic_toolset_plugin_load_errors",
    "dynamic_toolset_cache_services",
    "dynamic_toolset_configmap_last_success_timestamp_seconds",
    "dynamic_toolset_build_info",
    "dynamic_toolset_plugin_info",
    # The HTTP API
    "dynamic_toolset_api_requests_total",
    "dynamic_toolset_api_auth_failures_total",
    # Configuration reloads
    "dynamic_toolset_config_reloads_total",
    "dynamic_toolset_config_generation",
)


def _counter_base(name: str) -> str:
    # prometheus_client appends "_total" to counters; give it the base name.
    return name.removesuffix("_total")


class Metrics:
    """All of dyntoolset's metrics, registered in :attr:`registry`.

    Attributes are ``prometheus_client`` metric objects; labelled ones are
    used as ``metrics.health_check_failures.labels(detector=…, reason=…).inc()``.
    Per-service labels are deliberately absent: label values come from small
    fixed sets (detector names, reasons, results, namespaces).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        namespace_label_limit: int = DEFAULT_NAMESPACE_LABEL_LIMIT,
    ) -> None:
        if namespace_label_limit < 0:
            raise ValueError(
                f"namespace_label_limit must be 0 or more, not {namespace_label_limit}"
            )
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        #: How many distinct namespaces get their own label value (0: none,
        #: i.e. the label is effectively off and everything counts as ``other``).
        self.namespace_label_limit = namespace_label_limit
        self._namespace_labels: set[str] = set()
        r = self.registry

        # -- V1 ---------------------------------------------------------------
        self.services_discovered = Counter(
            _counter_base("dynamic_toolset_services_discovered_total"),
            "Services recognised by a detector, summed over discovery runs.",
            registry=r,
        )
        self.discovery_duration = Histogram(
            "dynamic_toolset_discovery_duration_seconds",
            "Duration of one discovery run.",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.discovery_errors = Counter(
            _counter_base("dynamic_toolset_discovery_errors_total"),
            "Discovery runs that failed.",
            registry=r,
        )
        self.health_check_failures = Counter(
            _counter_base("dynamic_toolset_health_check_failures_total"),
            "Health checks that failed, by detector and reason "
            "(timeout, connection_refused, connection_error, dns, http_status, blocked, tls).",
            ["detector", "reason"],
            registry=r,
        )
        self.configmap_updates = Counter(
            _counter_base("dynamic_toolset_configmap_updates_total"),
            "Writes (create or update) of the output ConfigMap.",
            registry=r,
        )
        self.configmap_reconcile_duration = Histogram(
            "dynamic_toolset_configmap_reconcile_duration_seconds",
            "Duration of one ConfigMap reconcile.",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.configmap_drift_detected = Counter(
            _counter_base("dynamic_toolset_configmap_drift_detected_total"),
            "Generated ConfigMap keys found edited or removed (V1 name).",
            registry=r,
        )
        self.generations = Counter(
            _counter_base("dynamic_toolset_generations_total"),
            "Toolset documents generated.",
            registry=r,
        )
        self.tools_count = Gauge(
            "dynamic_toolset_tools_count",
            "Toolsets in the documents of the last discovery cycle.",
            registry=r,
        )

        # -- V2 (BR-TOOLSET-041/042) -------------------------------------------
        self.detector_duration = Histogram(
            "dynamic_toolset_detector_duration_seconds",
            "Time one detector spent in one discovery run.",
            ["detector"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.detector_services_found = Gauge(
            "dynamic_toolset_detector_services_found",
            "Services the detector matched in the last discovery run.",
            ["detector"],
            registry=r,
        )
        self.detector_errors = Counter(
            _counter_base("dynamic_toolset_detector_errors_total"),
            "Errors raised by a detector, by error type.",
            ["detector", "error_type"],
            registry=r,
        )
        self.discovery_services = Counter(
            _counter_base("dynamic_toolset_discovery_services_total"),
            "Services discovered, by namespace, summed over discovery runs.",
            ["namespace"],
            registry=r,
        )
        self.discovery_skipped = Counter(
            _counter_base("dynamic_toolset_discovery_skipped_total"),
            "Services that produced no toolset, by reason.",
            ["reason"],
            registry=r,
        )
        self.configmap_reconciliations = Counter(
            _counter_base("dynamic_toolset_configmap_reconciliations_total"),
            "ConfigMap reconciles, by result.",
            ["result"],
            registry=r,
        )
        self.configmap_drift_detections = Counter(
            _counter_base("dynamic_toolset_configmap_drift_detections_total"),
            "Generated ConfigMap keys found edited or removed (V2 name).",
            registry=r,
        )
        self.configmap_update_errors = Counter(
            _counter_base("dynamic_toolset_configmap_update_errors_total"),
            "Failed ConfigMap writes, by error type.",
            ["error_type"],
            registry=r,
        )

        # -- Health checks --------------------------------------------------------
        self.health_checks = Counter(
            _counter_base("dynamic_toolset_health_checks_total"),
            "Health checks performed (cached results not counted), by detector and result "
            "(ok or a failure reason).",
            ["detector", "result"],
            registry=r,
        )
        self.health_check_cycle_duration = Histogram(
            "dynamic_toolset_health_check_cycle_duration_seconds",
            "Duration of one round of health checks.",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.health_check_deadline_exceeded = Counter(
            _counter_base("dynamic_toolset_health_check_deadline_exceeded_total"),
            "Rounds of health checks cut short by their deadline.",
            registry=r,
        )

        # -- The controller -------------------------------------------------------
        self.is_leader = Gauge(
            "dynamic_toolset_leader_election_is_leader",
            "1 while this replica may write the ConfigMap (it holds the Lease, or leader "
            "election is off), else 0.",
            registry=r,
        )

        self.cache_synced = Gauge(
            "dynamic_toolset_cache_synced",
            "1 once the Service cache has listed and is watching, else 0 (read at scrape time).",
            registry=r,
        )
        self.plugin_load_errors = Gauge(
            "dynamic_toolset_plugin_load_errors",
            "Plugins (or their detectors/renderers) that failed to load and were skipped.",
            registry=r,
        )
        self.cache_services = Gauge(
            "dynamic_toolset_cache_services",
            "Services in the watch cache (read at scrape time).",
            registry=r,
        )
        self.configmap_last_success = Gauge(
            "dynamic_toolset_configmap_last_success_timestamp_seconds",
            "Unix time of the last reconcile that succeeded (success, unchanged or dry_run); "
            "0 before the first.",
            registry=r,
        )
        self.build_info = Gauge(
            "dynamic_toolset_build_info",
            "Always 1; the labels say which dyntoolset and Python run.",
            ["version", "python"],
            registry=r,
        )
        self.plugin_info = Gauge(
            "dynamic_toolset_plugin_info",
            "Always 1, one series per installed distribution whose detectors or renderers "
            "were loaded (dyntoolset itself for the built-ins).",
            ["distribution", "version"],
            registry=r,
        )

        # -- The HTTP API -----------------------------------------------------------
        self.api_requests = Counter(
            _counter_base("dynamic_toolset_api_requests_total"),
            "Requests to /api/v1, by route pattern (never the raw path) and status code.",
            ["route", "code"],
            registry=r,
        )
        self.api_auth_failures = Counter(
            _counter_base("dynamic_toolset_api_auth_failures_total"),
            "Refused /api/v1 requests, by reason (missing, malformed, invalid, forbidden, "
            "unavailable).",
            ["reason"],
            registry=r,
        )

        # -- Configuration reloads ------------------------------------------------
        self.config_reloads = Counter(
            _counter_base("dynamic_toolset_config_reloads_total"),
            "Configuration reloads by result: success (applied), unchanged, failure "
            "(the running configuration stayed).",
            ["result"],
            registry=r,
        )
        self.config_generation = Gauge(
            "dynamic_toolset_config_generation",
            "The configuration generation in force: 1 at start, one more per applied reload.",
            registry=r,
        )

    def set_build_info(self, version: str, python: str) -> None:
        """Export which dyntoolset and Python run (one series, value 1)."""
        self.build_info.clear()
        self.build_info.labels(version=version, python=python).set(1)

    def set_plugin_distributions(self, distributions: Iterable[tuple[str, str]]) -> None:
        """Export the loaded distributions, ``(name, version)`` pairs, replacing earlier ones.

        Bounded: one series per installed distribution, never per Service.
        """
        self.plugin_info.clear()
        for name, version in distributions:
            self.plugin_info.labels(distribution=name, version=version).set(1)

    def namespace_label(self, namespace: str) -> str:
        """The ``namespace`` label value to use for ``namespace``.

        The first :attr:`namespace_label_limit` distinct namespaces keep their
        name; every later one is :data:`OTHER_NAMESPACE`, so a cluster with
        thousands of namespaces cannot blow up the series count.
        """
        if namespace in self._namespace_labels:
            return namespace
        if len(self._namespace_labels) < self.namespace_label_limit:
            self._namespace_labels.add(namespace)
            return namespace
        return OTHER_NAMESPACE

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (what ``/metrics`` serves)."""
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The current value of sample ``name`` (e.g. ``..._total``), 0.0 if absent.

        Convenient in tests and for the statistics endpoint.
        """
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else float(found)
