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

from typing import Any

from dyntoolset import urlpolicy
from dyntoolset.detector import DetectContext, Detector, NoSettings, choose_port
from dyntoolset.detectors._common import BuiltinDetector
from dyntoolset.errors import InvalidService
from dyntoolset.hookspecs import PLUGIN_API_VERSION, hookimpl
from dyntoolset.model import Discovered, Port, Service
from dyntoolset.prefilter import Prefilter

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
MAX_HEALTH_PATH_LENGTH = urlpolicy.MAX_PATH
_MAX_ENABLED_LENGTH = 16
#: How much of a bad value a reason quotes (escaped), so a 10 KB value or one
#: with line breaks cannot flood or forge log lines.
_QUOTE_CHARS = 40


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


# How each endpoint rule of the URL policy is worded for this annotation
# ({reason}: the policy's own words, where they add what exactly is wrong).
_ENDPOINT_REFUSALS: dict[str, str] = {
    # One line of printable ASCII without spaces is checked first: what is left is '\\'.
    "characters": "must not contain backslashes",
    "url": "is not a valid URL ({reason})",
    "scheme": "must be an http:// or https:// URL",
    "credentials": "must not contain user information (user@host)",
    "query": "must not have a query string or fragment",
    "port": "has port 0",
    "path": "path may only contain letters, digits and - . _ ~ : / (no '..', no encoded "
    "'/', '%' or control characters): {reason}",
}


def _parse_endpoint(
    value: str, service: Service, ctx: DetectContext[NoSettings]
) -> tuple[str, Port]:
    """Validate an endpoint override; return the normalised URL and the Service port it uses."""
    _one_line(ENDPOINT, value, MAX_ENDPOINT_LENGTH)
    if " " in value:
        # urlsplit() would quietly strip leading and trailing blanks.
        raise InvalidService(f"annotation {ENDPOINT} must not contain spaces")
    own = urlpolicy.own_hosts(service.name, service.namespace, ctx.cluster_domain)
    try:
        endpoint = urlpolicy.parse_endpoint(value, own, ctx.allowed_hosts)
    except urlpolicy.EndpointRefused as exc:
        if exc.rule == "host" and exc.host is not None and exc.host.refusal == "ip":
            message = "must name the Service's DNS name, not an IP address"
        elif exc.rule == "host" and exc.host is not None:
            message = (
                f"must point at the Service itself ({service.name}.{service.namespace}"
                f"[.svc[.{ctx.cluster_domain}]]) or a host in health_checks.allowed_hosts; "
                f"got host {_quote(exc.host.host)}"
            )
        else:
            reason = exc.reason
            if exc.rule == "url":  # "endpoint is not a valid URL (why)": keep the why
                reason = reason.removeprefix("endpoint is not a valid URL (").removesuffix(")")
            message = _ENDPOINT_REFUSALS[exc.rule].format(reason=reason)
        raise InvalidService(f"annotation {ENDPOINT} {message}") from None
    port = service.port_numbered(endpoint.port)
    if port is None:
        # A ClusterIP only forwards the ports the Service declares; a headless
        # Service resolves to the pods, which may listen on any port.
        if not service.is_headless and endpoint.host.own:
            raise InvalidService(
                f"annotation {ENDPOINT} uses port {endpoint.port}, which the Service does not expose"
            )
        port = Port(port=endpoint.port)
    return endpoint.url, port


def _health_path(value: str) -> str:
    _one_line(HEALTH_PATH, value, MAX_HEALTH_PATH_LENGTH)
    problem = urlpolicy.health_path_problem(value)
    if problem:
        raise InvalidService(f"annotation {HEALTH_PATH}: {problem}")
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

    # Nothing happens without the opt-in annotation.
    prefilter = Prefilter(annotation_keys=[ENABLED])

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
        if urlpolicy.dns_label_problem(type_):
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


#: Built-ins are plugins like any other and declare the API they use.
DYNTOOLSET_PLUGIN_API = PLUGIN_API_VERSION


@hookimpl
def register_detectors() -> list[type[Detector[Any]]]:
    """Register :class:`CustomDetector`."""
    return [CustomDetector]
