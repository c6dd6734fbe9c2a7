"""The one policy for names, hosts, endpoints and health paths.

Every rule about a DNS name, a Kubernetes name, a host an agent or a health
check may reach, an endpoint URL or a health path lives here, once. The
configuration's value types, the ``custom`` detector, snapshots, annotation
matching and the health-check guard all ask this module, so a hostile value
gets the same verdict wherever it enters. The module is pure: no I/O, no
sockets, no resolver.

Names
    A *DNS label* is 1-63 lowercase letters, digits and ``-``, starting and
    ending with a letter or digit (RFC 1123; namespaces). A *DNS-1035 label*
    also starts with a letter (Service names, detector names). A *DNS name*
    is dot-separated DNS labels, at most 253 characters.

Hosts
    An endpoint's host must be one of the Service's own DNS names
    (``name.ns``, ``name.ns.svc``, ``name.ns.svc.<cluster domain>``) or match
    ``health_checks.allowed_hosts``. IP literals in any spelling (dotted,
    decimal, hex, octal, IPv6), names of the local machine and cloud metadata
    names are refused whatever the allow-list says. One trailing dot is
    accepted and dropped.

Paths
    Endpoint and health paths start with ``/``, use only letters, digits,
    ``- . _ ~ : /`` and well-formed percent-escapes, have no empty segment
    (``//``), no ``..`` (raw or decoded), and no escape of ``/``, ``\\``,
    ``.``, ``%``, ``?``, ``#``, ``@``, control or non-ASCII bytes. A *health*
    path may end in one simple query (``/_cluster/health?local=true``: letters,
    digits and ``- . _ ~ = & + ,`` plus the same escapes); an endpoint path
    may not, and neither may have a fragment.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Literal
from urllib.parse import unquote, urlsplit

import attrs

MAX_DNS_LABEL = 63
MAX_DNS_NAME = 253
#: The longest path (endpoint or health) accepted anywhere.
MAX_PATH = 256
#: A Service host is ``<name>.<namespace>.svc.<cluster domain>`` with name and
#: namespace up to 63 characters each: the cluster domain must leave room.
MAX_CLUSTER_DOMAIN = MAX_DNS_NAME - 2 * MAX_DNS_LABEL - len("..svc.")

_LABEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
_DNS_LABEL = re.compile(_LABEL)
_DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# The name part of a Kubernetes qualified name (annotation and label keys).
_QUALIFIED_NAME_PART = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_HOST_PATTERN = re.compile(r"[a-z0-9*](?:[a-z0-9*.-]{0,251}[a-z0-9*])?")
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~:/%]*")
_QUERY_CHARS = re.compile(r"[A-Za-z0-9\-._~=&+,%]*")
_PERCENT = re.compile(r"%([0-9a-fA-F]{2})")

#: Names that reach the node or the cloud provider's metadata service.
DENIED_HOSTS = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_DECODED_FORBIDDEN = "./\\?#@%"
# Refused raw and percent-encoded: userinfo, fragments, Windows separators, traversal.
_FORBIDDEN_SEQUENCES = ("@", "#", "\\", "..")


# -- names --------------------------------------------------------------------


def dns_label_problem(name: str, what: str = "name") -> str | None:
    """Why ``name`` is not a DNS label (RFC 1123: namespaces), or ``None``."""
    if _DNS_LABEL.fullmatch(name):
        return None
    return (
        f"{name!r} is not a valid {what}: lowercase letters, digits and '-', "
        f"at most {MAX_DNS_LABEL} characters"
    )


def dns1035_label_problem(name: str, what: str = "name") -> str | None:
    """Why ``name`` is not a DNS-1035 label (Service and detector names), or ``None``."""
    if _DNS1035_LABEL.fullmatch(name):
        return None
    return (
        f"{name!r} is not a valid {what}: lowercase letters, digits and '-', "
        f"starting with a letter, at most {MAX_DNS_LABEL} characters"
    )


def dns_name_problem(name: str) -> str | None:
    """Why ``name`` is not a DNS name (labels of at most 63, 253 in all), or ``None``."""
    if len(name) > MAX_DNS_NAME or not _DNS_NAME.fullmatch(name):
        return f"{name!r} is not a valid DNS name (lowercase letters, digits, '-', '.')"
    return None


def cluster_domain_problem(domain: str) -> str | None:
    """Why ``domain`` cannot be the cluster's DNS domain, or ``None``.

    Besides being a DNS name it must leave room for the longest Service
    host name, ``<63 characters>.<63 characters>.svc.<domain>``.
    """
    problem = dns_name_problem(domain)
    if problem is None and len(domain) > MAX_CLUSTER_DOMAIN:
        problem = (
            f"cluster domain is {len(domain)} characters long; at most {MAX_CLUSTER_DOMAIN} "
            f"leave room for Service host names within the {MAX_DNS_NAME} DNS allows"
        )
    return problem


def qualified_name_problem(key: str, what: str = "annotation key") -> str | None:
    """Why ``key`` is not a Kubernetes qualified name (``example.com/name``), or ``None``."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or dns_name_problem(prefix)):
        return f"invalid {what} {key!r}: the prefix must be a DNS subdomain"
    if not _QUALIFIED_NAME_PART.fullmatch(name):
        return (
            f"invalid {what} {key!r}: the name must be 1-63 characters of "
            f"letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return None


def host_pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not an ``allowed_hosts`` entry, or ``None``."""
    if not _HOST_PATTERN.fullmatch(pattern):
        return (
            f"{pattern!r} is not a host name pattern: use lowercase letters, digits, "
            f"'-', '.' and '*' wildcards, like '*.example.com'"
        )
    return None


# -- hosts --------------------------------------------------------------------

HostRefusal = Literal["ip", "denied", "invalid", "not_allowed"]


@attrs.frozen
class HostVerdict:
    """Whether a host may be used, and if not, why (``refusal`` names the rule)."""

    host: str  # lowercase, without the trailing dot
    own: bool = False
    refusal: HostRefusal | None = None
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def own_hosts(name: str, namespace: str, cluster_domain: str) -> frozenset[str]:
    """The names by which a Service is reachable: ``name.ns``, ``name.ns.svc[.domain]``."""
    base = f"{name}.{namespace}".lower()
    return frozenset((base, f"{base}.svc", f"{base}.svc.{cluster_domain.lower()}"))


def is_ip_like(host: str) -> bool:
    """IP literals in any spelling: dotted, decimal, hex, octal, IPv6, with a zone.

    No real DNS name ends in a label that starts with a digit (top-level
    domains are alphabetic), and IPv6 literals contain ``:``.
    """
    return ":" in host or "%" in host or host.rsplit(".", 1)[-1][:1].isdigit()


def judge_host(host: str, own: Iterable[str], allowed_hosts: Iterable[str]) -> HostVerdict:
    """The verdict on ``host`` for an endpoint of a Service whose own names are ``own``."""
    name = host.lower()
    name = name[:-1] if name.endswith(".") else name
    if name in own:
        return HostVerdict(name, own=True)
    if is_ip_like(name):
        try:
            ipaddress.ip_address(name)
            kind = "an IP address"
        except ValueError:  # 0xA9FEA9FE, 2852039166, 127.1: what inet_aton would read
            kind = "a numeric address encoding"
        return HostVerdict(
            name,
            refusal="ip",
            reason=f"host {name!r} is {kind}, neither the Service's own DNS name nor an allowed "
            f"host name: IP literals are never allowed",
        )
    if dns_name_problem(name):
        return HostVerdict(name, refusal="invalid", reason=f"host {name!r} is not a valid DNS name")
    if name in DENIED_HOSTS or name.endswith(".localhost"):
        return HostVerdict(
            name,
            refusal="denied",
            reason=f"host {name!r} names the local machine or a cloud metadata service",
        )
    if not any(fnmatchcase(name, p.lower().rstrip(".")) for p in allowed_hosts):
        return HostVerdict(
            name,
            refusal="not_allowed",
            reason=f"host {name!r} is neither the Service's own DNS name nor in "
            f"health_checks.allowed_hosts",
        )
    return HostVerdict(name)


# -- paths --------------------------------------------------------------------


def _escape_problem(text: str, what: str) -> str | None:
    for match in _PERCENT.finditer(text):
        byte = int(match.group(1), 16)
        if byte >= 0x80 or chr(byte) in _DECODED_FORBIDDEN:
            return f"{what} {text[:60]!r} percent-encodes a forbidden character ({match.group(0)})"
    if "%" in _PERCENT.sub("", text):
        return f"{what} {text[:60]!r} has a malformed percent-escape"
    return None


def _common_problem(path: str, what: str) -> str | None:
    """The rules endpoint and health paths share, on the raw and the decoded text."""
    if not path.startswith("/"):
        return f"{what} {path[:60]!r} must start with '/'"
    if path.startswith("//"):
        # "//host/x" is a network-path reference: joined to a URL it names another host.
        return f"{what} {path[:60]!r} must not start with '//'"
    if len(path) > MAX_PATH:
        return f"{what} is longer than {MAX_PATH} characters"
    decoded = unquote(path)
    for bad in _FORBIDDEN_SEQUENCES:
        if bad in path:
            return f"{what} {path[:60]!r} must not contain {bad!r}"
        if bad in decoded:
            return f"{what} {path[:60]!r} must not contain {bad!r}, not even percent-encoded"
    if path.isprintable() and not decoded.isprintable():
        return f"{what} {path[:60]!r} must not percent-encode control characters"
    return None


def _segments_problem(path: str, what: str) -> str | None:
    if not _PATH_CHARS.fullmatch(path):
        return (
            f"{what} {path[:60]!r} may only contain letters, digits, '-', '.', '_', '~', ':', "
            f"'/' and percent-escapes"
        )
    if "//" in path:
        return f"{what} {path[:60]!r} must not contain an empty segment ('//')"
    return _escape_problem(path, what)


def path_problem(path: str, what: str = "endpoint path") -> str | None:
    """Why ``path`` is not a safe endpoint path (no query), or ``None``; see the module docstring."""
    return _common_problem(path, what) or _segments_problem(path, what)


def health_path_problem(path: str) -> str | None:
    """Why ``path`` is not a safe health-check path (a path, maybe a query), or ``None``."""
    what = "health path"
    problem = _common_problem(path, what)
    if problem:
        return problem
    base, question, query = path.partition("?")
    problem = _segments_problem(base, what)
    if problem or not question:
        return problem
    if not _QUERY_CHARS.fullmatch(query):
        return (
            f"{what} query {query[:60]!r} may only contain letters, digits, "
            f"'-', '.', '_', '~', '=', '&', '+', ',' and percent-escapes"
        )
    return _escape_problem(query, f"{what} query")


# -- endpoints ----------------------------------------------------------------

EndpointRefusal = Literal[
    "characters", "url", "scheme", "credentials", "query", "port", "host", "path"
]


class EndpointRefused(ValueError):
    """An endpoint URL is refused; ``rule`` names the rule, ``host`` the verdict if any."""

    def __init__(self, rule: EndpointRefusal, reason: str, host: HostVerdict | None = None) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason
        self.host = host


@attrs.frozen
class Endpoint:
    """An accepted endpoint: lowercase scheme and host, an explicit port, a path."""

    scheme: str
    host: HostVerdict
    port: int
    explicit_port: bool
    path: str  # without trailing '/'; "" for the root

    @property
    def url(self) -> str:
        """``scheme://host:port/path``: the form the renderers publish."""
        return f"{self.scheme}://{self.host.host}:{self.port}{self.path}"


def parse_endpoint(url: str, own: Iterable[str], allowed_hosts: Iterable[str]) -> Endpoint:
    """Check an endpoint URL against every rule; raises :class:`EndpointRefused`."""
    if not url.isprintable() or not url.isascii() or any(c in url for c in " \\"):
        raise EndpointRefused(
            "characters", "endpoint contains whitespace, backslashes or control characters"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EndpointRefused("url", f"endpoint is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise EndpointRefused(
            "scheme", f"scheme {parts.scheme or '(none)'!r} is not http or https with a host"
        )
    if "@" in parts.netloc:
        raise EndpointRefused("credentials", "endpoint carries credentials ('@' in the authority)")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise EndpointRefused("query", "endpoint has a query or fragment")
    if not parts.hostname:
        raise EndpointRefused("scheme", "endpoint has no host")
    if port == 0:
        raise EndpointRefused("port", "endpoint has port 0")
    verdict = judge_host(parts.hostname, own, allowed_hosts)
    if not verdict.allowed:
        raise EndpointRefused("host", verdict.reason, verdict)
    path = parts.path.rstrip("/")
    if path:
        problem = path_problem(path)
        if problem:
            raise EndpointRefused("path", problem, verdict)
    number = port if port is not None else (443 if scheme == "https" else 80)
    return Endpoint(scheme, verdict, number, port is not None, path)
