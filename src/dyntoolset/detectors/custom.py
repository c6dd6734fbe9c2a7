"""The ``custom`` detector: Services that opt in with ``kubernaut.io/toolset*`` annotations.

``kubernaut.io/toolset: "enabled"`` (or ``"true"``) opts a Service in;
``kubernaut.io/toolset-type`` names its toolset type (required);
``kubernaut.io/toolset-endpoint`` overrides the endpoint and
``kubernaut.io/toolset-health-path`` the health-check path.

Annotations are written by anyone who may edit a Service, and their values end
up in a ConfigMap that an AI agent reads and in URLs the service and the agent
request. So every value is validated, and a Service with a bad value is skipped
with a reason (:class:`~dyntoolset.errors.InvalidService`) rather than
"repaired". In particular an endpoint override may only point at the Service's
own DNS name (or a host an operator allowed in ``health_checks.allowed_hosts``):
never at an IP address, the node, the cloud metadata service or another
Service — otherwise any namespace could aim the agent anywhere.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import unquote, urlsplit

from dyntoolset.detector import DetectContext, Detector, NoSettings, choose_port
from dyntoolset.detectors._common import BuiltinDetector
from dyntoolset.errors import InvalidService
from dyntoolset.hookspecs import hookimpl
from dyntoolset.model import Discovered, Port, Service

ENABLED = "kubernaut.io/toolset"
TYPE = "kubernaut.io/toolset-type"
ENDPOINT = "kubernaut.io/toolset-endpoint"
HEALTH_PATH = "kubernaut.io/toolset-health-path"

_ON = frozenset({"enabled", "true"})
_OFF = frozenset({"disabled", "false", ""})

#: Length caps. A type is a name, like a detector name (DNS label length).
MAX_TYPE_LENGTH = 63
#: Generous for a base URL; far below anything that could bloat the ConfigMap.
MAX_ENDPOINT_LENGTH = 512
MAX_HEALTH_PATH_LENGTH = 256
_MAX_ENABLED_LENGTH = 16
#: How much of a bad value a reason quotes (escaped), so a 10 KB value or one
#: with line breaks cannot flood or forge log lines.
_QUOTE_CHARS = 40

# Compiled once at import: detect() runs for every Service, every cycle.
_TYPE_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DNS_NAME_RE = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
# A base URL path: /select/0/prometheus, /api/prom, /loki. No quoting, query,
# YAML indicators (! & * : #) or whitespace: nothing an agent prompt or a YAML
# document could read as anything but a path.
_ENDPOINT_PATH_RE = re.compile(r"(?:/[A-Za-z0-9._~%-]+)*")
_HEALTH_PATH_RE = re.compile(r"/[A-Za-z0-9._~/%?=-]*")
_HEALTH_FORBIDDEN = ("@", "#", "\\", "\r", "\n", "..")
# Host names that reach the node or the cloud provider's metadata service
# whatever health_checks.allowed_hosts says (IP literals are refused separately).
_DENIED_HOSTS = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)


def _quote(value: str) -> str:
    shown = repr(value[:_QUOTE_CHARS])
    return shown + "..." if len(value) > _QUOTE_CHARS else shown


def _one_line(key: str, value: str, limit: int) -> None:
    """Refuse values that are too long or are not one line of printable ASCII."""
    if len(value) > limit:
        raise InvalidService(
            f"annotation {key} is {len(value)} characters long; the limit is {limit}"
        )
    # isprintable() is False for CR, LF, TAB and other control characters;
    # ASCII-only rules out look-alike and bidirectional-override characters.
    if not (value.isascii() and value.isprintable()):
        raise InvalidService(
            f"annotation {key} must be one line of printable ASCII, got {_quote(value)}"
        )


def _is_ip_like(host: str) -> bool:
    """IP literals in any spelling: dotted, decimal (2852039166), hex (0xA9FEA9FE), octal, IPv6.

    No real DNS name ends in a label that starts with a digit (top-level
    domains are alphabetic), and IPv6 literals contain ``:``.
    """
    return ":" in host or host.rsplit(".", 1)[-1][:1].isdigit()


def _own_hosts(service: Service, cluster_domain: str) -> frozenset[str]:
    base = f"{service.name}.{service.namespace}".lower()
    return frozenset({base, f"{base}.svc", f"{base}.svc.{cluster_domain.lower()}"})


def _parse_endpoint(
    value: str, service: Service, ctx: DetectContext[NoSettings]
) -> tuple[str, Port]:
    """Validate an endpoint override; return the normalised URL and the Service port it uses."""
    _one_line(ENDPOINT, value, MAX_ENDPOINT_LENGTH)
    if " " in value:
        # urlsplit() would quietly strip leading and trailing blanks.
        raise InvalidService(f"annotation {ENDPOINT} must not contain spaces")
    try:
        parts = urlsplit(value)
        explicit_port = parts.port
    except ValueError as exc:
        raise InvalidService(
            f"annotation {ENDPOINT} is not a valid URL ({exc}): {_quote(value)}"
        ) from None
    scheme = parts.scheme
    if scheme not in ("http", "https") or not parts.netloc:
        raise InvalidService(
            f"annotation {ENDPOINT} must be an http:// or https:// URL, got {_quote(value)}"
        )
    if "@" in parts.netloc:
        raise InvalidService(f"annotation {ENDPOINT} must not contain user information (user@host)")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise InvalidService(f"annotation {ENDPOINT} must not have a query string or fragment")
    host = (parts.hostname or "").removesuffix(".")
    if not host:
        raise InvalidService(f"annotation {ENDPOINT} has no host")
    if host not in _own_hosts(service, ctx.cluster_domain):
        if _is_ip_like(host):
            raise InvalidService(
                f"annotation {ENDPOINT} must name the Service's DNS name, not an IP address"
            )
        if (
            len(host) > 253
            or not _DNS_NAME_RE.fullmatch(host)
            or host in _DENIED_HOSTS
            or host.endswith(".localhost")
            or not any(fnmatchcase(host, p) for p in ctx.allowed_hosts)
        ):
            raise InvalidService(
                f"annotation {ENDPOINT} must point at the Service itself "
                f"({service.name}.{service.namespace}[.svc[.{ctx.cluster_domain}]]) or a host "
                f"in health_checks.allowed_hosts; got host {_quote(host)}"
            )
    path = parts.path.rstrip("/")
    decoded = unquote(path)
    if (
        not _ENDPOINT_PATH_RE.fullmatch(path)
        or ".." in decoded
        or "%2f" in path.lower()
        or not decoded.isprintable()
    ):
        raise InvalidService(
            f"annotation {ENDPOINT} path may only contain letters, digits and - . _ ~ / "
            f"(no '..'), got {_quote(path)}"
        )
    if explicit_port == 0:
        raise InvalidService(f"annotation {ENDPOINT} has port 0")
    number = explicit_port if explicit_port is not None else (443 if scheme == "https" else 80)
    port = service.port_numbered(number)
    if port is None:
        # A ClusterIP only forwards the ports the Service declares; a headless
        # Service resolves to the pods, which may listen on any port.
        if not service.is_headless and host in _own_hosts(service, ctx.cluster_domain):
            raise InvalidService(
                f"annotation {ENDPOINT} uses port {number}, which the Service does not expose"
            )
        port = Port(port=number)
    return f"{scheme}://{host}:{number}{path}", port


def _health_path(value: str) -> str:
    _one_line(HEALTH_PATH, value, MAX_HEALTH_PATH_LENGTH)
    if not value.startswith("/"):
        raise InvalidService(f"annotation {HEALTH_PATH} must start with '/', got {_quote(value)}")
    if value.startswith("//"):
        # "//host/x" is a network-path reference: joined to the endpoint it
        # would name another host.
        raise InvalidService(f"annotation {HEALTH_PATH} must not start with '//'")
    decoded = unquote(value)
    if not decoded.isprintable():
        raise InvalidService(f"annotation {HEALTH_PATH} must not percent-encode control characters")
    for bad in _HEALTH_FORBIDDEN:
        if bad in value or bad in decoded:
            raise InvalidService(
                f"annotation {HEALTH_PATH} must not contain {bad!r} (also percent-encoded)"
            )
    if not _HEALTH_PATH_RE.fullmatch(value):
        raise InvalidService(
            f"annotation {HEALTH_PATH} may only contain letters, digits and - . _ ~ / % ? =, "
            f"got {_quote(value)}"
        )
    return value


class CustomDetector(BuiltinDetector[NoSettings]):
    """Finds Services that opt in with ``kubernaut.io/toolset`` annotations.

    The toolset type comes from ``kubernaut.io/toolset-type``; types with a
    built-in mapping (prometheus, grafana, elasticsearch, loki, tempo …)
    get that agent toolset, others a generic read-only HTTP toolset.
    """

    name = "custom"
    description = "Service annotated with kubernaut.io/toolset"
    default_priority = 5
    health_path = "/"

    def detect(self, service: Service, ctx: DetectContext[NoSettings]) -> Discovered | None:
        """Return the annotated toolset, ``None`` if not opted in; raise on bad annotations."""
        annotations = service.annotations
        enabled = annotations.get(ENABLED) if annotations else None
        if enabled is None:
            return None
        _one_line(ENABLED, enabled, _MAX_ENABLED_LENGTH)
        switch = enabled.strip().lower()
        if switch in _OFF:
            return None
        if switch not in _ON:
            raise InvalidService(
                f'annotation {ENABLED} must be "enabled" or "true" ("disabled" or "false" to '
                f"opt out), got {_quote(enabled)}"
            )
        type_ = annotations.get(TYPE)
        if type_ is None:
            raise InvalidService(f"annotation {TYPE} is required when {ENABLED} is set")
        _one_line(TYPE, type_, MAX_TYPE_LENGTH)
        if not _TYPE_RE.fullmatch(type_):
            raise InvalidService(
                f"annotation {TYPE} must be lowercase letters, digits and dashes "
                f"(like prometheus or billing-api), got {_quote(type_)}"
            )
        if service.type == "ExternalName":
            # Its DNS name is a CNAME to wherever spec.externalName says,
            # possibly outside the cluster or to a metadata address.
            raise InvalidService("ExternalName Services cannot be toolsets")
        raw_health = annotations.get(HEALTH_PATH)
        health = _health_path(raw_health) if raw_health is not None else ctx.health_path
        raw_endpoint = annotations.get(ENDPOINT)
        if raw_endpoint is not None:
            endpoint, port = _parse_endpoint(raw_endpoint, service, ctx)
            return self.discovered(
                service,
                port,
                ctx,
                endpoint=endpoint,
                health_path=health,
                description=f"{type_} service",
                toolset_type=type_,
            )
        chosen = choose_port(service, ("http", "https", "http-web", "web", "api"), (80, 443, 8080))
        if chosen is None:
            raise InvalidService(
                f"the Service has no TCP ports; add one or set annotation {ENDPOINT}"
            )
        return self.discovered(
            service,
            chosen,
            ctx,
            health_path=health,
            description=f"{type_} service",
            toolset_type=type_,
        )


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`CustomDetector`."""
    return [CustomDetector]
