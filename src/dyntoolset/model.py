"""Plain values that flow through discovery and rendering.

These are frozen attrs classes with no Kubernetes client types in them: a
:class:`Service` is a slim snapshot of the fields detectors look at, built
straight from the API's JSON (see :mod:`dyntoolset.snapshot`). Keeping them
small matters: per-Service work runs tens of thousands of times per cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

_EMPTY: Mapping[str, str] = MappingProxyType({})

#: The output ConfigMap's data key that belongs to the operator: never generated,
#: never changed (its ``toolsets:`` are merged into the HolmesGPT document).
OVERRIDES_KEY = "overrides.yaml"


@attrs.frozen(slots=True)
class Port:
    """One entry of a Service's ``spec.ports``."""

    port: int
    name: str = ""
    protocol: str = "TCP"
    app_protocol: str = ""


@attrs.frozen(slots=True, hash=False)
class Service:
    """A slim snapshot of a Kubernetes ``v1/Service``."""

    name: str
    namespace: str
    labels: Mapping[str, str] = _EMPTY
    annotations: Mapping[str, str] = _EMPTY
    ports: tuple[Port, ...] = ()
    type: str = "ClusterIP"
    cluster_ip: str = ""
    uid: str = ""
    resource_version: str = ""

    @property
    def key(self) -> str:
        """``namespace/name``: the Service's identity and sort key."""
        return f"{self.namespace}/{self.name}"

    @property
    def is_headless(self) -> bool:
        """True for ``clusterIP: None`` (governing Services of StatefulSets)."""
        return self.cluster_ip == "None"

    def dns_name(self, cluster_domain: str) -> str:
        """The in-cluster DNS name, e.g. ``prom.monitoring.svc.cluster.local``."""
        return f"{self.name}.{self.namespace}.svc.{cluster_domain}"

    def port_named(self, *names: str) -> Port | None:
        """The first port whose name is one of ``names`` (in ``names`` order)."""
        for wanted in names:
            for port in self.ports:
                if port.name == wanted:
                    return port
        return None

    def port_numbered(self, *numbers: int) -> Port | None:
        """The first port whose number is one of ``numbers``."""
        for wanted in numbers:
            for port in self.ports:
                if port.port == wanted:
                    return port
        return None


def _slot_setter(cls: type, name: str) -> Any:
    """The ``__set__`` of slot ``name`` of ``cls``: sets it on a frozen instance."""
    return cls.__dict__[name].__set__


# One setter per field of Service, by name; the import fails here if a field
# is added or renamed without updating new_service below.
_set_name = _slot_setter(Service, "name")
_set_namespace = _slot_setter(Service, "namespace")
_set_labels = _slot_setter(Service, "labels")
_set_annotations = _slot_setter(Service, "annotations")
_set_ports = _slot_setter(Service, "ports")
_set_type = _slot_setter(Service, "type")
_set_cluster_ip = _slot_setter(Service, "cluster_ip")
_set_uid = _slot_setter(Service, "uid")
_set_resource_version = _slot_setter(Service, "resource_version")
if {f.name for f in attrs.fields(Service)} != {
    "name",
    "namespace",
    "labels",
    "annotations",
    "ports",
    "type",
    "cluster_ip",
    "uid",
    "resource_version",
}:  # pragma: no cover - a guard for whoever changes Service
    raise ImportError("dyntoolset.model.new_service does not set every field of Service")
_new_object = object.__new__


def new_service(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    ports: tuple[Port, ...],
    type: str,
    cluster_ip: str,
    uid: str,
    resource_version: str,
) -> Service:
    """The same :class:`Service` as ``Service(name=..., ...)`` with every field given.

    For the snapshot constructor, which builds one per Service of the
    cluster: setting the slots directly costs about 0.8 µs instead of the
    2 µs of attrs' frozen ``__init__`` called with keywords (issue 15). Like
    that ``__init__`` (there are no validators), it checks nothing: the
    caller has checked the values.
    """
    service: Service = _new_object(Service)
    _set_name(service, name)
    _set_namespace(service, namespace)
    _set_labels(service, labels)
    _set_annotations(service, annotations)
    _set_ports(service, ports)
    _set_type(service, type)
    _set_cluster_ip(service, cluster_ip)
    _set_uid(service, uid)
    _set_resource_version(service, resource_version)
    return service


@attrs.frozen(slots=True)
class ToolsetSpec:
    """A toolset an agent can use, derived from one discovered service.

    ``kind`` is any HolmesGPT toolset name (``prometheus/metrics``,
    ``rabbitmq/core`` …) or ``http`` for a generic HTTP toolset; ``config`` is
    that toolset's ``config:`` block. Renderers decide the final toolset names
    and layout.
    """

    kind: str
    config: Mapping[str, Any]
    description: str = ""
    llm_instructions: str = ""
    #: For a kind HolmesGPT does not wrap in ``multi_instance`` (see
    #: ``dyntoolset.toolsets.BUILTIN_URL_KEYS``): the config key holding a
    #: list that several services' configs are joined under (``clusters`` for
    #: ``rabbitmq/core``). Empty: one service per kind, the first in
    #: namespace/name order; the others are left out with a warning.
    combine_key: str = ""


@attrs.frozen(slots=True)
class HealthStatus:
    """The outcome of the last health check of a discovered service."""

    healthy: bool
    reason: str  # ok, timeout, connection_refused, dns, http_status, blocked, tls
    checked_at: float  # Unix time
    detail: str = ""
    #: Failed checks in a row up to this one (0 after a success): with the
    #: failure threshold, why a service is still kept or already dropped.
    consecutive_failures: int = 0


#: How a backend is health-checked: ``http`` (GET the health path and expect
#: 2xx), ``tcp`` (connect to the Service's port, send nothing; for backends
#: that do not speak HTTP, such as Kafka) or ``none`` (never checked).
HEALTH_CHECK_KINDS = ("http", "tcp", "none")


@attrs.frozen(slots=True)
class Discovered:
    """A Service recognised by a detector, with everything needed to use it."""

    service: Service
    detector: str  # name of the detector that matched
    type: str  # toolset type: the detector's type, or the custom annotation's
    endpoint: str  # base URL, no trailing slash; <scheme>://host:port for non-HTTP backends
    health_path: str
    port: Port | None = None
    description: str = ""
    metadata: Mapping[str, str] = _EMPTY
    toolsets: tuple[ToolsetSpec, ...] = ()
    health: HealthStatus | None = None
    #: How its backend is health-checked: one of :data:`HEALTH_CHECK_KINDS`.
    health_check: str = "http"

    @property
    def key(self) -> str:
        """``namespace/name`` of the underlying Service."""
        return self.service.key
