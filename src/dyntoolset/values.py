"""Validated value types of the configuration and their checks.

Each ``NewType`` here (durations, bounded integers, DNS names, host patterns,
networks, health paths) names a rule; :mod:`dyntoolset.convert` registers one
structure hook per type, so a schema field typed ``Seconds`` or ``DnsName``
is checked wherever it appears, with the same message.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from typing import Any, NewType

from dyntoolset import urlpolicy
from dyntoolset.errors import describe
from dyntoolset.urlpolicy import (
    cluster_domain_problem,
    dns_name_problem,
    health_path_problem,
    host_pattern_problem,
)

#: The longest duration accepted anywhere (7 days): long enough for any
#: interval, short enough for socket and thread timeouts.
MAX_DURATION_SECONDS = 7 * 24 * 3600.0

Seconds = NewType("Seconds", float)
"""A positive duration: a number of seconds or a string like ``5s``, ``500ms``, ``1m30s``."""
NonNegativeInt = NewType("NonNegativeInt", int)
PositiveInt = NewType("PositiveInt", int)
Priority = NewType("Priority", int)
HealthPath = NewType("HealthPath", str)
DnsName = NewType("DnsName", str)
ClusterDomain = NewType("ClusterDomain", str)
"""A DNS name short enough to end every Service host name (see :mod:`dyntoolset.urlpolicy`)."""
DnsLabel = NewType("DnsLabel", str)
"""A DNS label such as a namespace name: no dots, at most 63 characters."""
HostPattern = NewType("HostPattern", str)
"""A host name or shell-style pattern: ``prometheus.infra``, ``*.example.com``."""
Network = NewType("Network", str)
"""An IP network in CIDR notation (``127.0.0.0/8``) or a single address."""
#: A mapping structured later by a detector's own ``Settings`` class.
RawMapping = NewType("RawMapping", dict[str, Any])

#: The inclusive bounds of each bounded integer type; :mod:`dyntoolset.convert`
#: checks them and ``scripts/config_reference.py`` documents them.
INT_BOUNDS: dict[object, tuple[int, int]] = {
    NonNegativeInt: (0, 1000),
    PositiveInt: (1, 1_000_000_000),
    Priority: (0, 1_000_000),
}

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

# The checks of the string types, re-exported: the rules themselves live in urlpolicy.
__all__ = [
    "INT_BOUNDS",
    "MAX_DURATION_SECONDS",
    "ClusterDomain",
    "DnsLabel",
    "DnsName",
    "HealthPath",
    "HostPattern",
    "Network",
    "NonNegativeInt",
    "PositiveInt",
    "Priority",
    "RawMapping",
    "Seconds",
    "bounded_int_hook",
    "checked_str_hook",
    "cluster_domain_problem",
    "dns_label_problem",
    "dns_name_problem",
    "health_path_problem",
    "host_pattern_problem",
    "network_problem",
    "parse_duration",
    "strict_hook",
]


def strict_hook(kind: type, label: str) -> Any:
    def hook(value: Any, _: Any) -> Any:
        # bool is an int subclass: reject it where an int or float is wanted.
        if type(value) is bool and kind is not bool:
            raise TypeError(f"expected {label}, got {describe(value)}")
        if kind is float and type(value) is int:
            return float(value)
        if not isinstance(value, kind):
            raise TypeError(f"expected {label}, got {describe(value)}")
        return value

    return hook


def parse_duration(value: Any) -> float:
    """Seconds from a number or a Go-style duration string (``5s``, ``1m30s``, ``250ms``).

    The result is finite, positive and at most :data:`MAX_DURATION_SECONDS`.
    """
    if type(value) in (int, float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond the float range
            seconds = math.inf
    elif isinstance(value, str):
        text = value.strip()
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(
                f"expected a duration such as 5s, 500ms, 1m30s or a number of seconds, "
                f"got {describe(value)}"
            )
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise TypeError(f"expected a duration, got {describe(value)}")
    if not seconds > 0:  # NaN included
        raise ValueError(f"must be a positive duration, got {describe(value)}")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(
            f"must be at most 7 days ({MAX_DURATION_SECONDS:.0f} seconds), got {describe(value)}"
        )
    return seconds


def bounded_int_hook(low: int, high: int) -> Any:
    strict_int = strict_hook(int, "int")

    def hook(value: Any, _: Any) -> int:
        number: int = strict_int(value, int)
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}, got {number}")
        return number

    return hook


def checked_str_hook(problem_of: Callable[[str], str | None]) -> Any:
    """A structure hook: a string (strictly) that ``problem_of`` finds nothing wrong with."""
    strict_str = strict_hook(str, "str")

    def hook(value: Any, _: Any) -> str:
        text: str = strict_str(value, str)
        problem = problem_of(text)
        if problem:
            raise ValueError(problem)
        return text

    return hook


def dns_label_problem(name: str) -> str | None:
    """Why ``name`` cannot be a namespace name, or ``None``."""
    return urlpolicy.dns_label_problem(name, "namespace name")


def network_problem(text: str) -> str | None:
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return f"{text!r} is not an IP network such as 127.0.0.0/8 or ::1"
    return None
