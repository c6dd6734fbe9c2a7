"""SSRF guards: what a health check may ask for, and where it may connect.

Anyone who can annotate a Service can influence the URL dyntoolset probes,
so every check passes through here *before* any packet leaves the process:

* :func:`build_target` parses the endpoint and health path into a
  :class:`Target` under the rules of :mod:`dyntoolset.urlpolicy` (the same
  rules the ``custom`` detector applies to annotations): plain
  ``http``/``https`` to a host that is the Service's own DNS name or on the
  ``allowed_hosts`` list, with a path free of traversal and smuggling
  characters.
* :func:`pin_address` resolves the host **once** and refuses the answer if
  any address is loopback, link-local, a cloud metadata address, IPv4-mapped
  IPv6 and similar, unless ``allowed_networks`` says otherwise. The transport
  then connects to exactly that address, so a DNS answer that changes between
  check and connect (rebinding) cannot redirect the request.

Refusals raise :class:`Blocked`; the checker reports them with reason
``blocked``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence

import attrs

from dyntoolset import urlpolicy
from dyntoolset.model import Discovered

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: A resolver maps a host name to the addresses it stands for (text form).
Resolver = Callable[[str], Sequence[str]]


class Blocked(Exception):
    """A health check refused by the SSRF guards; ``str(exc)`` says why."""


class ResolutionFailed(Exception):
    """The host name did not resolve (reported with reason ``dns``)."""


# Addresses a health check must never reach unless explicitly allowed.
# Cluster IPs live in private ranges (10/8, 172.16/12, 192.168/16, fc00::/7),
# so those stay open; what is closed is the node itself and the cloud's
# instance metadata and link-local services.
_BLOCKED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("0.0.0.0/8", "'this host' network"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (includes cloud metadata 169.254.169.254)"),
        ("100.100.100.200/32", "cloud metadata (Alibaba)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved or broadcast"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::ffff:0:0/96", "IPv4-mapped IPv6"),
        ("::/96", "IPv4-compatible IPv6"),
        ("fe80::/10", "link-local"),
        ("fd00:ec2::254/128", "cloud metadata (AWS IPv6)"),
        ("ff00::/8", "multicast"),
    )
)
# IPv6 ranges that embed an IPv4 address a router will reach: judged by that address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@attrs.frozen(slots=True)
class Target:
    """A validated health-check request: where, and what to GET."""

    scheme: str  # http or https
    host: str  # lowercase host name or IP literal (no brackets), no trailing dot
    port: int
    path: str  # request target: endpoint path + health path, validated
    own_host: bool  # True when host is the Service's own DNS name

    @property
    def host_header(self) -> str:
        """The ``Host`` header value (port omitted when it is the scheme's default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL, for logs and details."""
        return f"{self.scheme}://{self.host_header}{self.path}"


def path_problem(path: str, what: str = "health path") -> str | None:
    """Why ``path`` is unsafe to request, or ``None`` (the rules of :mod:`dyntoolset.urlpolicy`).

    A health path may end in a simple query; an endpoint path may not.
    """
    if what == "health path":
        return urlpolicy.health_path_problem(path)
    return urlpolicy.path_problem(path, what)


def own_dns_names(discovered: Discovered, cluster_domain: str) -> frozenset[str]:
    """Names by which the Service itself is reachable: ``name.ns``, ``name.ns.svc[.domain]``."""
    svc = discovered.service
    return urlpolicy.own_hosts(svc.name, svc.namespace, cluster_domain)


def build_target(
    discovered: Discovered,
    health_path: str,
    *,
    cluster_domain: str = "cluster.local",
    allowed_hosts: Sequence[str] = (),
) -> Target:
    """Validate ``discovered.endpoint`` + ``health_path`` into a :class:`Target`.

    Raises :class:`Blocked` when the endpoint breaks a rule of
    :mod:`dyntoolset.urlpolicy` (not plain http/https, credentials, a query
    or fragment, a host that is an IP literal, local, malformed or neither
    the Service's own DNS name nor allowed, an unsafe path) or the health
    path is unsafe. Does no I/O.
    """
    own = own_dns_names(discovered, cluster_domain)
    try:
        endpoint = urlpolicy.parse_endpoint(discovered.endpoint, own, allowed_hosts)
    except urlpolicy.EndpointRefused as exc:
        raise Blocked(exc.reason) from None
    problem = urlpolicy.health_path_problem(health_path)
    if problem:
        raise Blocked(problem)
    return Target(
        scheme=endpoint.scheme,
        host=endpoint.host.host,
        port=endpoint.port,
        path=endpoint.path + health_path,
        own_host=endpoint.host.own,
    )


def parse_networks(networks: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse ``allowed_networks`` (CIDR or single addresses); raises ``ValueError``."""
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks)


def address_problem(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why connecting to ``address`` is refused, or ``None`` if it is allowed.

    ``allowed`` networks win over the built-in block list (tests allow
    ``127.0.0.0/8``; a cluster may allow a node-local backend).
    """
    if any(address.version == net.version and address in net for net in allowed):
        return None
    for net, why in _BLOCKED_NETWORKS:
        if address.version == net.version and address in net:
            return f"address {address} is {why}"
    if isinstance(address, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = None
        if address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        elif address.sixtofour is not None:
            embedded = address.sixtofour
        elif address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is not None:
            inner = address_problem(embedded, allowed)
            if inner:
                return f"address {address} embeds {embedded}: {inner}"
    return None


def system_resolver(host: str) -> Sequence[str]:
    """Resolve ``host`` with the system resolver (``getaddrinfo``), unique addresses in order."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for info in infos:
        seen.setdefault(str(info[4][0]), None)
    return list(seen)


def pin_address(host: str, resolver: Resolver, allowed: Sequence[IPNetwork] = ()) -> IPAddress:
    """Resolve ``host`` once and return the address to connect to.

    An IP literal is used as is (no lookup). Raises :class:`ResolutionFailed`
    when the name does not resolve, and :class:`Blocked` when *any* returned
    address is refused: a name that also points at a metadata address is not
    trusted for its other answers either.
    """
    try:
        return _checked(ipaddress.ip_address(host), allowed)
    except ValueError:
        pass
    try:
        answers = list(resolver(host))
    except (OSError, UnicodeError) as exc:
        raise ResolutionFailed(f"cannot resolve {host!r}: {exc}") from None
    if not answers:
        raise ResolutionFailed(f"{host!r} resolved to no address")
    addresses = []
    for text in answers:
        try:
            # Strip a zone id: fe80::1%eth0 is still link-local.
            addresses.append(ipaddress.ip_address(str(text).split("%", 1)[0]))
        except ValueError:
            raise Blocked(f"{host!r} resolved to {text!r}, which is not an IP address") from None
    for address in addresses:
        _checked(address, allowed, host)
    return addresses[0]


def _checked(
    address: IPAddress, allowed: Sequence[IPNetwork], host: str | None = None
) -> IPAddress:
    problem = address_problem(address, allowed)
    if problem:
        prefix = f"{host!r} resolves to a refused address: " if host else ""
        raise Blocked(prefix + problem + " (add it to health_checks.allowed_networks to allow it)")
    return address
