"""The ``prometheus`` detector: PromQL query endpoints.

Matches the Prometheus server of the common charts and operators, and the
Prometheus-compatible query layers HolmesGPT itself treats as Prometheus:
Thanos Query / Query Frontend and VictoriaMetrics single-node / vmselect.
Every other Service of those stacks (exporters, operators, Alertmanager,
Pushgateway, the operator's ``*-operated`` governing Services, Thanos
sidecar/store/compactor/receive/ruler, vmagent/vminsert/vmstorage/vmalert/vmauth)
is ignored. See ``docs/detectors.md`` for the chart shapes behind each rule.
"""

from __future__ import annotations

from typing import Any

import attrs

from dyntoolset.credentials import AUTH_KEYS, CredentialSettings
from dyntoolset.detector import DetectContext, Detector, choose_port
from dyntoolset.detectors._common import (
    APP,
    NAME,
    PART_OF,
    BuiltinDetector,
    component_label,
    from_chart,
    is_grpc,
)
from dyntoolset.hookspecs import PLUGIN_API_VERSION, hookimpl
from dyntoolset.model import Discovered, Service, ToolsetSpec
from dyntoolset.prefilter import Prefilter
from dyntoolset.toolsets import API_PREFIX, FLAVOR, prometheus_toolset


@attrs.frozen(slots=True)
class _Flavor:
    """How to query one Prometheus-compatible product."""

    key: str  # metadata "flavor"
    description: str
    port_names: tuple[str, ...]
    port_numbers: tuple[int, ...]
    health_path: str
    api_prefix: str = ""
    #: Whether the product's *only* query Service may be headless (then it is
    #: not a governing duplicate of a ClusterIP Service and must be accepted).
    headless_ok: bool = False
    #: Refuse to fall back to "the first port" (a gRPC-only Service of the
    #: same component exists, e.g. Bitnami's ``*-thanos-query-grpc``).
    require_known_port: bool = False


# prometheus-community/kube-prometheus-stack: port ``http-web`` 9090 (older
# releases ``web``) next to ``reloader-web`` 8080; prometheus-community/prometheus:
# port ``http`` 80 -> 9090; kube-prometheus (jsonnet) prometheus-k8s: ``web`` 9090;
# OpenShift prometheus-k8s: ``web`` 9091 (TLS, see detector.scheme_for).
_PROMETHEUS = _Flavor(
    key="prometheus",
    description="Prometheus",
    port_names=("http-web", "web", "http", "https-web", "https"),
    port_numbers=(9090, 9091),
    health_path="/-/healthy",
)
# Bitnami thanos: ``<release>-thanos-query`` / ``-query-frontend``, port ``http`` 9090
# (plus a gRPC-only ``-query-grpc`` Service on 10901); kube-thanos: ``thanos-query``
# ports ``grpc`` 10901 and ``http`` 9090; OpenShift ``thanos-querier``: ``web`` 9091.
_THANOS = _Flavor(
    key="thanos",
    description="Thanos Query (Prometheus-compatible)",
    port_names=("http", "web", "http-web", "https"),
    port_numbers=(9090, 10902),
    health_path="/-/healthy",
    require_known_port=True,
)
# VictoriaMetrics/helm-charts victoria-metrics-single: ``<release>-victoria-metrics-
# single-server`` port ``http`` 8428, headless in StatefulSet mode (the default),
# with the same name; the operator's VMSingle: ``vmsingle-<name>`` ``http`` 8429.
_VM_SINGLE = _Flavor(
    key="victoriametrics",
    description="VictoriaMetrics single-node (Prometheus-compatible)",
    port_names=("http",),
    port_numbers=(8428, 8429),
    health_path="/health",
    headless_ok=True,
)
# victoria-metrics-cluster chart: ``<release>-victoria-metrics-cluster-vmselect``
# port ``http`` 8481, headless when vmselect runs as a StatefulSet; the
# operator's VMCluster: ``vmselect-<name>``, always headless. PromQL lives under
# /select/<tenant>/prometheus; tenant 0 is the default (single-tenant) account.
_VM_SELECT = _Flavor(
    key="victoriametrics",
    description="VictoriaMetrics cluster vmselect (Prometheus-compatible)",
    port_names=("http",),
    port_numbers=(8481,),
    health_path="/health",
    api_prefix="/select/0/prometheus",
    headless_ok=True,
)

# bitnami/victoriametrics (cluster mode only): ``<fullname>-vmselect``, a ClusterIP
# Service ``http`` 8481, plus ``<fullname>-vmselect-headless`` when vmselect runs
# as a StatefulSet: a governing duplicate here, unlike the charts above.
_VM_SELECT_BITNAMI = attrs.evolve(_VM_SELECT, headless_ok=False)
# The name bitnami/victoriametrics gives every component (told apart by
# app.kubernetes.io/component: vmselect, vminsert, vmstorage, vmagent, vmalert, vmauth).
_BITNAMI_VM = "victoriametrics"

# Components of a Prometheus *server* Service among charts that label every
# Service of a release with app.kubernetes.io/name=prometheus: "server"
# (prometheus-community/prometheus, Bitnami prometheus), "prometheus"
# (kube-prometheus jsonnet, OpenShift). The old stable/prometheus chart used the
# legacy ``component`` label with alertmanager, node-exporter, pushgateway and
# kube-state-metrics too: those are rejected here.
_SERVER_COMPONENTS = frozenset({"", "server", "prometheus"})
# Bitnami thanos labels every component app.kubernetes.io/name=thanos; only the
# query layer answers PromQL (sidecar, storegateway, compactor, receive, ruler,
# bucketweb do not, or only partially).
_THANOS_QUERY_COMPONENTS = frozenset({"query", "query-frontend"})
# kube-thanos, the Thanos operator and OpenShift name the query layer itself.
_THANOS_QUERY_NAMES = frozenset({"thanos-query", "thanos-query-frontend"})
# Charts whose Prometheus Service is ``<fullname>-prometheus`` with
# ``app: <name>-prometheus`` and no app.kubernetes.io/name: kube-prometheus-stack
# and its predecessor stable/prometheus-operator (``chart`` label prefix).
_OPERATOR_STACK_CHARTS = ("kube-prometheus-stack", "prometheus-operator")
# app.kubernetes.io/part-of of everything OpenShift's cluster-monitoring-operator
# deploys (openshift/cluster-monitoring-operator assets/).
_OPENSHIFT_MONITORING = "openshift-monitoring"


#: Every app.kubernetes.io/name value _flavor() takes a Service of.
_FLAVOR_NAMES = (
    "prometheus",
    "kube-prometheus",
    "thanos",
    *_THANOS_QUERY_NAMES,
    "vmsingle",
    "victoria-metrics-single",
    "vmselect",
    _BITNAMI_VM,
    "victoria-metrics-cluster",
)


def _flavor(service: Service) -> _Flavor | None:
    """Which query product ``service`` is, from its labels; ``None`` for anything else."""
    labels = service.labels
    name = labels.get(NAME, "")
    if name:
        if name == "prometheus":
            return _PROMETHEUS if component_label(labels) in _SERVER_COMPONENTS else None
        if name == "kube-prometheus":
            # Bitnami kube-prometheus: one name for the whole stack, the
            # component tells prometheus from operator/alertmanager/exporters.
            return _PROMETHEUS if component_label(labels) == "prometheus" else None
        if name == "thanos":
            return _THANOS if component_label(labels) in _THANOS_QUERY_COMPONENTS else None
        if name in _THANOS_QUERY_NAMES:
            return _THANOS
        if name in ("vmsingle", "victoria-metrics-single"):
            return _VM_SINGLE
        if name == "vmselect":
            return _VM_SELECT
        if name == _BITNAMI_VM:
            return _VM_SELECT_BITNAMI if component_label(labels) == "vmselect" else None
        if name == "victoria-metrics-cluster":
            # The cluster chart tells components apart by the ``app`` label.
            part = labels.get(APP) or component_label(labels)
            return _VM_SELECT if part == "vmselect" else None
        return None
    app = labels.get(APP, "")
    if not app:
        return None
    if app == "prometheus":
        # Pre-2020 charts and hand-written manifests: app/component labels only.
        return _PROMETHEUS if component_label(labels) in _SERVER_COMPONENTS else None
    if app.endswith("-prometheus") and service.name.endswith("-prometheus"):
        # kube-prometheus-stack: ``app: <name>-prometheus`` and
        # ``app.kubernetes.io/part-of: <name>``. The name suffix rules out the
        # per-replica ``<fullname>-prometheus-<n>`` Services of servicePerReplica.
        part_of = labels.get(PART_OF, "")
        if (part_of and app == f"{part_of}-prometheus") or labels.get("chart", "").startswith(
            _OPERATOR_STACK_CHARTS
        ):
            return _PROMETHEUS
    return None


def _renamed_server(service: Service) -> _Flavor | None:
    """A chart installed with a ``nameOverride``: its name label is then the
    override, but the chart label and the component stay. The server of
    prometheus-community/prometheus (or stable/prometheus, Bitnami
    prometheus), Bitnami thanos' query layer and Bitnami victoriametrics' vmselect."""
    labels = service.labels
    component = component_label(labels)
    if component == "server" and from_chart(labels, "prometheus"):
        return _PROMETHEUS
    if component in _THANOS_QUERY_COMPONENTS and from_chart(labels, "thanos"):
        return _THANOS
    if component == "vmselect" and from_chart(labels, _BITNAMI_VM):
        return _VM_SELECT_BITNAMI
    return None


@attrs.frozen
class PrometheusSettings(CredentialSettings):
    """Options of the ``prometheus`` detector (``detectors.prometheus.config``).

    The credential fields HolmesGPT's ``prometheus/metrics`` takes:
    ``token_env`` (sent as ``Authorization: Bearer {{ env.NAME }}`` in
    ``additional_headers``, e.g. OpenShift's thanos-querier) and
    ``verify_ssl``.
    """

    auth_keys = AUTH_KEYS["prometheus/metrics"]


class PrometheusDetector(BuiltinDetector[PrometheusSettings]):
    """Finds Prometheus servers and Prometheus-compatible query layers (Thanos, VictoriaMetrics).

    Writes a ``prometheus/metrics`` toolset whose ``prometheus_url`` includes the
    query path prefix where the product needs one (vmselect).
    """

    name = "prometheus"
    description = "Prometheus-compatible metrics (Prometheus, Thanos Query, VictoriaMetrics)"
    default_priority = 1
    health_path = "/-/healthy"
    Settings = PrometheusSettings
    # What _flavor() and _renamed_server() compare: the name labels, the
    # kube-prometheus-stack ``app: <name>-prometheus``, and the charts a
    # nameOverride leaves recognisable.
    prefilter = Prefilter(
        label_values={NAME: _FLAVOR_NAMES, APP: ["prometheus"]},
        label_suffixes={APP: ["-prometheus"]},
        charts=["prometheus", "thanos", _BITNAMI_VM],
    )

    def detect(self, service: Service, ctx: DetectContext[PrometheusSettings]) -> Discovered | None:
        """Return the query endpoint if ``service`` is a Prometheus-compatible query API."""
        if not service.labels or not service.ports or service.type == "ExternalName":
            return None
        flavor = _flavor(service) or _renamed_server(service)
        if flavor is None:
            return None
        # The Prometheus Operator's ``prometheus-operated`` (and Bitnami's
        # ``*-headless``) are governing Services of StatefulSets, duplicates of
        # a ClusterIP Service of the same server.
        if service.is_headless and not flavor.headless_ok:
            return None
        if service.labels.get(PART_OF) == _OPENSHIFT_MONITORING:
            # OpenShift's cluster monitoring puts kube-rbac-proxy in front of
            # every port and documents what each one serves: only "web" serves
            # the query API (prometheus-k8s, thanos-querier). The user-workload
            # Prometheus has none: 9091 "metrics" is /metrics only, 9092
            # /federate, 10902 the sidecar's /metrics (queries go through
            # thanos-querier), so neither a number nor the first port may do.
            port = service.port_named("web")
        elif flavor.require_known_port:
            port = service.port_named(*flavor.port_names) or service.port_numbered(
                *flavor.port_numbers
            )
        else:
            port = choose_port(service, flavor.port_names, flavor.port_numbers)
        # The first-port fallback must not land on a gRPC port: Bitnami's Thanos
        # sidecar Services (``*-prometheus-thanos``, ``*-prometheus-server-thanos``)
        # carry the Prometheus server's labels and one ``grpc`` port.
        if port is None or is_grpc(port):
            return None
        # A configured health path wins; the detector default is replaced by
        # the product's own (VictoriaMetrics has no /-/healthy).
        health = ctx.health_path if ctx.health_path_configured else flavor.health_path
        metadata = {FLAVOR: flavor.key}
        if flavor.api_prefix:
            metadata[API_PREFIX] = flavor.api_prefix
        return self.discovered(
            service,
            port,
            ctx,
            health_path=health,
            description=flavor.description,
            metadata=metadata,
        )

    def toolsets(self, found: Discovered, settings: PrometheusSettings) -> tuple[ToolsetSpec, ...]:
        """``prometheus/metrics``, with the credentials that are configured."""
        return prometheus_toolset(found, credentials=settings)


#: Built-ins are plugins like any other and declare the API they use.
DYNTOOLSET_PLUGIN_API = PLUGIN_API_VERSION


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`PrometheusDetector`."""
    return [PrometheusDetector]
