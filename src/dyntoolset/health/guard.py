"""SSRF guards: what a health check may ask for, and where it may connect.

Anyone who can annotate a Service can influence the URL dyntoolset probes,
so every check passes through here *before* any packet leaves the process:

* :func:`build_target` parses the endpoint and health path into a
  :class:`Target` and refuses what is not plain ``http``/``https`` to a host
  that is the Service's own DNS name or on the ``allowed_hosts`` list, with a
  path free of traversal and smuggling characters.
* :func:`pin_address` resolves the host **once** and refuses the answer if
  any address is loopback, link-local, a cloud metadata address, IPv4-mapped
  IPv6 and similar, unless ``allowed_networks`` says otherwise. The transport
  then connects to exactly that address, so a DNS answer that changes between
  check and connect (rebinding) cannot redirect the request.

Refusals raise :class:`Blocked`; the checker reports them with reason
``blocked``.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import unquote, urlsplit

import attrs

from dyntoolset.model import Discovered
from dyntoolset.values import health_path_problem

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

_LABEL = r"[a-z0-9_]([-a-z0-9_]*[a-z0-9_])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")
# A last label that is all digits or hex is a number, not a name: inet_aton
# would read 0xA9FEA9FE, 2852039166, 0251.0376.0251.0376 or 127.1 as addresses.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_PERCENT = re.compile(r"%([0-9a-fA-F]{2})")
_PATH_CHARS = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:/%]*$")
_QUERY_CHARS = re.compile(r"^[A-Za-z0-9\-._~=&+,%]*$")


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
    """Why ``path`` is unsafe to request, or ``None``.

    On top of the configuration's rules (starts with ``/``; no ``@``, ``#``,
    ``\\``, CR/LF, ``..``) only RFC 3986 path characters are allowed, and
    percent-escapes must not encode what the raw rules forbid (``%2e%2e``,
    ``%2f``, ``%40`` …): a server or the API server's proxy that decodes them
    would otherwise see a traversal. A health path may end in a simple query
    (``/_cluster/health?local=true``: letters, digits, ``-._~=&+,%``), which
    the custom-service annotation allows; an endpoint path may not.
    """
    if "?" in path and what == "health path":
        path, query = path.split("?", 1)
        if not _QUERY_CHARS.match(query):
            return f"{what} query {query!r} may only contain letters, digits and -._~=&+,%"
        problem = _percent_problem(query, what)
        if problem:
            return problem
    problem = health_path_problem(path)
    if problem:
        return problem.replace("health path", what, 1)
    if not _PATH_CHARS.match(path):
        return f"{what} {path!r} contains characters outside RFC 3986 path characters"
    problem = _percent_problem(path, what)
    if problem:
        return problem
    if ".." in unquote(path):
        return f"{what} {path!r} contains '..' once decoded"
    return None


def _percent_problem(text: str, what: str) -> str | None:
    for match in _PERCENT.finditer(text):
        byte = int(match.group(1), 16)
        decoded = chr(byte)
        if byte >= 0x80 or decoded in "./\\?#@%" or not decoded.isprintable():
            return f"{what} {text!r} percent-encodes a forbidden character ({match.group(0)})"
    if _PERCENT.sub("", text).count("%"):
        return f"{what} {text!r} has a malformed percent-escape"
    return None


def host_problem(host: str) -> str | None:
    """Why ``host`` (lowercase, unbracketed) is not an acceptable host, or ``None``."""
    # Before the IP literal test: ipaddress accepts scoped literals (fe80::1%eth0).
    if "%" in host:
        return f"host {host!r}: zone identifiers are not allowed"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if len(host) > 253 or not _HOSTNAME.match(host):
        return f"host {host!r} is not a valid DNS name or IP address"
    if _NUMERIC_LABEL.match(host.rstrip(".").rsplit(".", 1)[-1]):
        return f"host {host!r} is a numeric address encoding"
    name = host.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return f"host {host!r} names the local machine"
    return None


def own_dns_names(discovered: Discovered, cluster_domain: str) -> frozenset[str]:
    """Names by which the Service itself is reachable: ``name.ns``, ``name.ns.svc[.domain]``."""
    svc = discovered.service
    base = f"{svc.name}.{svc.namespace}".lower()
    return frozenset((base, f"{base}.svc", f"{base}.svc.{cluster_domain.lower()}"))


def host_allowed(host: str, own: Iterable[str], allowed_hosts: Sequence[str]) -> bool:
    """True if ``host`` is one of the Service's ``own`` names or matches ``allowed_hosts``.

    ``allowed_hosts`` entries are shell patterns (``*.example.com``), matched
    case-insensitively against the host without its port.
    """
    name = host.rstrip(".")
    if name in own:
        return True
    return any(fnmatch.fnmatchcase(name, pattern.lower().rstrip(".")) for pattern in allowed_hosts)


def build_target(
    discovered: Discovered,
    health_path: str,
    *,
    cluster_domain: str = "cluster.local",
    allowed_hosts: Sequence[str] = (),
) -> Target:
    """Validate ``discovered.endpoint`` + ``health_path`` into a :class:`Target`.

    Raises :class:`Blocked` when the scheme is not http/https, the URL has
    credentials, a query or fragment, the host is malformed, numeric-encoded
    or outside the Service's own DNS name and the allow-list, or a path is
    unsafe. Does no I/O.
    """
    endpoint = discovered.endpoint
    if not endpoint.isprintable() or any(c in endpoint for c in " \\"):
        raise Blocked("endpoint contains whitespace, backslashes or control characters")
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise Blocked(f"endpoint {endpoint!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Blocked(f"scheme {parts.scheme or '(none)'!r} is not http or https")
    if "@" in parts.netloc:
        raise Blocked("endpoint carries credentials ('@' in the authority)")
    if parts.query or parts.fragment or "?" in endpoint or "#" in endpoint:
        raise Blocked("endpoint has a query or fragment")
    host = (parts.hostname or "").lower()
    if not host:
        raise Blocked(f"endpoint {endpoint!r} has no host")
    problem = host_problem(host)
    if problem:
        raise Blocked(problem)
    if port is None:
        port = 443 if scheme == "https" else 80
    if not 0 < port < 65536:
        raise Blocked(f"port {port} is out of range")
    own = own_dns_names(discovered, cluster_domain)
    is_own = host.rstrip(".") in own
    if not host_allowed(host, own, allowed_hosts):
        raise Blocked(
            f"host {host!r} is neither the Service's own DNS name nor in health_checks.allowed_hosts"
        )
    base_path = parts.path.rstrip("/")
    if base_path:
        problem = path_problem(base_path, "endpoint path")
        if problem:
            raise Blocked(problem)
    problem = path_problem(health_path)
    if problem:
        raise Blocked(problem)
    return Target(
        scheme=scheme,
        host=host.rstrip("."),
        port=port,
        path=base_path + health_path,
        own_host=is_own,
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
