"""The :class:`Detector` base class: what a detector plugin implements.

Read the docstring of :class:`Detector` first; it is the plugin author's
main documentation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar

import attrs

from dyntoolset.model import Discovered, Port, Service, ToolsetSpec
from dyntoolset.prefilter import Prefilter

_NO_METADATA: Mapping[str, str] = MappingProxyType({})


@attrs.frozen
class NoSettings:
    """Settings of a detector that has no options of its own."""


#: The type of a detector's own settings (its ``Settings`` class).
SettingsT = TypeVar("SettingsT")


@attrs.frozen(slots=True)
class DetectContext(Generic[SettingsT]):
    """What a detector needs besides the Service, fixed for a whole run.

    Built once per detector per discovery run, never per Service. Generic in
    the detector's settings class, so ``ctx.settings`` is typed:
    ``DetectContext[LokiSettings]``.
    """

    #: The detector's own settings: an instance of its ``Settings`` class,
    #: structured from the ``config:`` block of its configuration.
    settings: SettingsT
    #: Cluster DNS domain used to build endpoints (``cluster.local``).
    cluster_domain: str = "cluster.local"
    #: The configured health path (``health_check.path``) or the detector's default.
    health_path: str = "/"
    #: True when ``health_path`` was configured (``health_check.path``), even if it
    #: equals the default: a detector that picks another path for some Services
    #: (a gateway, a flavour) must not override what an operator wrote.
    health_path_configured: bool = False
    #: Host patterns an endpoint override may name besides the Service's own
    #: DNS names (``health_checks.allowed_hosts``).
    allowed_hosts: tuple[str, ...] = ()
    #: How what it finds is health-checked: ``health_check.kind`` from the
    #: configuration, else the detector's ``health_check`` (``http``, ``tcp``, ``none``).
    health_check: str = "http"

    def endpoint(self, service: Service, port: Port, scheme: str | None = None) -> str:
        """``scheme://<name>.<namespace>.svc.<domain>:<port>`` for ``port`` of ``service``.

        ``scheme`` defaults to :func:`scheme_for` of the port and the Service.
        """
        scheme = scheme or scheme_for(port, service)
        return f"{scheme}://{service.dns_name(self.cluster_domain)}:{port.port}"


class Detector(Generic[SettingsT]):
    """Recognises one kind of observability backend among a cluster's Services.

    Subclass it with your settings class as the type argument
    (``class LokiDetector(Detector[LokiSettings])``; ``Detector[NoSettings]``
    for none), set the class attributes, implement :meth:`detect`, and
    register the class from a ``register_detectors`` hook (see
    :mod:`dyntoolset.hookspecs`). The contract:

    ``name``
        Unique, lowercase letters, digits and dashes (``loki``, ``tempo``).
        It is the key of the detector's block under ``detectors:`` in the
        configuration and the ``detector`` label of its metrics.
    ``toolset_type``
        The toolset type written for what it finds (defaults to ``name``).
    ``version`` / ``description``
        Shown by ``dyntoolset plugins``.
    ``default_priority``
        Position when the configuration sets none; lower runs first. The
        first detector that matches a Service wins.
    ``health_path``
        The default health-check path of the backend (``/-/healthy``).
    ``health_check``
        How the backend is checked: ``http`` (the default: GET the health
        path, expect 2xx), ``tcp`` (connect to the port only, for backends
        that do not speak HTTP, such as Kafka) or ``none``. Operators may
        override it with ``detectors.<name>.health_check.kind``.
    ``prefilter``
        Optional :class:`~dyntoolset.prefilter.Prefilter`: cheap necessary
        conditions (label values, chart-label prefixes, annotation keys, port
        names) a Service must meet for :meth:`detect` to be called at all.
        Discovery looks them up for every detector at once, so a detector
        that declares one costs almost nothing on the Services it cannot
        take. ``None`` (the default): consulted on every Service.
    ``Settings``
        An attrs class for the detector's own options, structured (strictly:
        unknown keys and wrong types are errors) from the ``config:`` block of
        ``detectors.<name>``. The default has no fields.

    :meth:`detect` must be a *pure* function of the Service and the context:
    no I/O, no state, no clock. It runs for every Service in the cluster on
    every cycle, so keep it cheap: look at labels and ports, and return
    ``None`` as early as possible. Namespace filters and required annotations
    from the configuration are applied by the engine before it is called.
    Raise :class:`~dyntoolset.errors.InvalidService` when a Service clearly
    asks for this detector but is malformed (the Service is skipped with
    that reason); any other exception is counted as a detector error.

    :meth:`toolsets` says which agent toolsets a discovered service becomes,
    given the detector's settings; the default is one generic HTTP toolset
    limited to the service's host (:func:`dyntoolset.toolsets.http_toolset`).
    ``dyntoolset.toolsets`` has a builder for each HolmesGPT toolset the
    built-ins emit; a :class:`~dyntoolset.model.ToolsetSpec` may name any
    HolmesGPT toolset kind.

    What a detector puts in :attr:`Discovered.metadata` is **published**:
    the Kubernaut ``toolset.json`` carries it as is. Keep secrets and
    credential names in settings, which reach :meth:`toolsets`.
    """

    name: ClassVar[str]
    toolset_type: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    description: ClassVar[str] = ""
    default_priority: ClassVar[int] = 100
    health_path: ClassVar[str] = "/"
    health_check: ClassVar[str] = "http"
    prefilter: ClassVar[Prefilter | None] = None
    Settings: ClassVar[type[Any]] = NoSettings

    def detect(self, service: Service, ctx: DetectContext[SettingsT]) -> Discovered | None:
        """Return a :class:`Discovered` if ``service`` is this backend's query endpoint."""
        raise NotImplementedError

    def toolsets(self, found: Discovered, settings: SettingsT) -> Sequence[ToolsetSpec]:
        """The agent toolsets ``found`` provides; default: one generic HTTP toolset.

        ``settings`` is the detector's own settings (the ``Settings`` instance
        of its configuration), for options that shape the toolset.
        """
        from dyntoolset.toolsets import http_toolset

        return (http_toolset(found),)

    def discovered(
        self,
        service: Service,
        port: Port,
        ctx: DetectContext[SettingsT],
        *,
        scheme: str | None = None,
        endpoint: str | None = None,
        health_path: str | None = None,
        description: str = "",
        toolset_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Discovered:
        """Build the :class:`Discovered` for ``service`` reached on ``port``.

        ``scheme``
            ``http`` or ``https``; default :func:`scheme_for` (port name,
            appProtocol, number and the Service's TLS annotations).
        ``endpoint``
            The whole base URL, replacing ``scheme://<dns name>:<port>``.
        ``health_path``
            Default: the context's (configured, or the detector's default).
        ``description``
            What the service is, for people and agents: it becomes the
            Kubernaut tool's ``description`` and the start of a generic HTTP
            toolset's. Default: the class's ``description``.
        ``toolset_type``
            The type written for this service; default the class's
            ``toolset_type``, else its ``name``.
        ``metadata``
            Strings about this service, published in ``toolset.json``.
        """
        return Discovered(
            service=service,
            detector=self.name,
            type=toolset_type or self.toolset_type or self.name,
            endpoint=endpoint or ctx.endpoint(service, port, scheme),
            health_path=health_path or ctx.health_path,
            port=port,
            description=description or self.description,
            metadata=MappingProxyType(dict(metadata)) if metadata else _NO_METADATA,
            health_check=ctx.health_check,
        )


_TLS_PORT_NAMES = ("https", "tls", "ssl")
# Service annotations that say the backend speaks TLS.  The OpenShift
# service-CA annotations make the platform issue a serving certificate for the
# Service (OpenShift's prometheus-k8s and thanos-querier serve https on a port
# named ``web``, which no port-name rule could recognise).
_OPENSHIFT_SERVING_CERT = (
    "service.beta.openshift.io/serving-cert-secret-name",
    "service.alpha.openshift.io/serving-cert-secret-name",
)
# Traefik: the scheme Traefik uses to reach this Service's pods.
_TRAEFIK_SCHEME = "traefik.ingress.kubernetes.io/service.serversscheme"
# Contour: comma-separated port names or numbers that expect TLS upstream.
_CONTOUR_TLS = (
    "projectcontour.io/upstream-protocol.tls",
    "contour.heptio.com/upstream-protocol.tls",
)


def _port_says_tls(port: Port) -> bool:
    name = port.name.lower()
    if port.app_protocol.lower() in ("https", "tls"):
        return True
    if any(
        name == t or name.startswith(t + "-") or name.endswith("-" + t) for t in _TLS_PORT_NAMES
    ):
        return True
    return port.port in (443, 8443)


def _annotations_say_tls(annotations: Mapping[str, str], port: Port) -> bool:
    if annotations.get(_TRAEFIK_SCHEME, "").strip().lower() == "https":
        return True
    for key in _CONTOUR_TLS:
        value = annotations.get(key)
        if value:
            wanted = {item.strip() for item in value.split(",")}
            if str(port.port) in wanted or (port.name and port.name in wanted):
                return True
    return any(key in annotations for key in _OPENSHIFT_SERVING_CERT)


def scheme_for(port: Port, service: Service | None = None) -> str:
    """``https`` when ``port`` (name ``https``/``tls``/``ssl`` or ``*-https`` …,
    appProtocol ``https``/``tls``, number 443 or 8443) or the Service's
    annotations (OpenShift serving certificates, Traefik's servers scheme,
    Contour's upstream TLS) say the backend speaks TLS; else ``http``."""
    if _port_says_tls(port):
        return "https"
    if (
        service is not None
        and service.annotations
        and _annotations_say_tls(service.annotations, port)
    ):
        return "https"
    return "http"


def choose_port(
    service: Service, names: Sequence[str] = (), numbers: Sequence[int] = ()
) -> Port | None:
    """The port to query: a named port first, then a well-known number, then the first TCP port.

    Only TCP ports carry HTTP APIs (a Jaeger all-in-one Service lists its UDP
    agent ports first). ``None`` when no port fits: a Service without a
    usable port cannot be a toolset.
    """
    port = service.port_named(*names) or service.port_numbered(*numbers)
    if port is not None:
        return port if port.protocol.upper() == "TCP" else None
    for candidate in service.ports:
        if candidate.protocol.upper() == "TCP":
            return candidate
    return None
