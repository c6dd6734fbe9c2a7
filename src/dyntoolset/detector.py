"""The :class:`Detector` base class: what a detector plugin implements.

Read the docstring of :class:`Detector` first; it is the plugin author's
main documentation.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from dyntoolset.model import Discovered, Port, Service, ToolsetSpec

_NO_METADATA: Mapping[str, str] = MappingProxyType({})


@attrs.frozen
class NoSettings:
    """Settings of a detector that has no options of its own."""


@attrs.frozen(slots=True)
class DetectContext:
    """What a detector needs besides the Service, fixed for a whole run.

    Built once per detector per discovery run, never per Service.
    """

    #: The detector's own settings: an instance of its ``Settings`` class,
    #: structured from the ``config:`` block of its configuration.
    settings: Any
    #: Cluster DNS domain used to build endpoints (``cluster.local``).
    cluster_domain: str = "cluster.local"
    #: The configured health path (``health_check.path``) or the detector's default.
    health_path: str = "/"
    #: Host patterns an endpoint override may name besides the Service's own
    #: DNS names (``health_checks.allowed_hosts``).
    allowed_hosts: tuple[str, ...] = ()

    def endpoint(self, service: Service, port: Port, scheme: str | None = None) -> str:
        """``scheme://<name>.<namespace>.svc.<domain>:<port>`` for ``port`` of ``service``."""
        scheme = scheme or scheme_for(port)
        return f"{scheme}://{service.dns_name(self.cluster_domain)}:{port.port}"


class Detector:
    """Recognises one kind of observability backend among a cluster's Services.

    Subclass it, set the class attributes, implement :meth:`detect`, and
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

    :meth:`toolsets` says which agent toolsets a discovered service becomes;
    the default is one generic HTTP toolset limited to the service's host.
    """

    name: ClassVar[str]
    toolset_type: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    description: ClassVar[str] = ""
    default_priority: ClassVar[int] = 100
    health_path: ClassVar[str] = "/"
    Settings: ClassVar[builtins.type] = NoSettings

    def detect(self, service: Service, ctx: DetectContext) -> Discovered | None:
        """Return a :class:`Discovered` if ``service`` is this backend's query endpoint."""
        raise NotImplementedError

    def toolsets(self, found: Discovered) -> Sequence[ToolsetSpec]:
        """The agent toolsets ``found`` provides; default: one generic HTTP toolset."""
        from dyntoolset.toolsets import http_toolset

        return (http_toolset(found),)

    def discovered(
        self,
        service: Service,
        port: Port,
        ctx: DetectContext,
        *,
        scheme: str | None = None,
        endpoint: str | None = None,
        health_path: str | None = None,
        description: str = "",
        type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Discovered:
        """Build the :class:`Discovered` for ``service`` reached on ``port``."""
        return Discovered(
            service=service,
            detector=self.name,
            type=type or self.toolset_type or self.name,
            endpoint=endpoint or ctx.endpoint(service, port, scheme),
            health_path=health_path or ctx.health_path,
            port=port,
            description=description or self.description,
            metadata=MappingProxyType(dict(metadata)) if metadata else _NO_METADATA,
        )


_TLS_PORT_NAMES = ("https", "tls", "ssl")


def scheme_for(port: Port) -> str:
    """``https`` when the port's name, appProtocol or number says so, else ``http``."""
    name = port.name.lower()
    app = port.app_protocol.lower()
    if app in ("https", "tls"):
        return "https"
    if any(
        name == t or name.startswith(t + "-") or name.endswith("-" + t) for t in _TLS_PORT_NAMES
    ):
        return "https"
    if port.port in (443, 8443):
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
