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

from dyntoolset.errors import describe

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
DnsLabel = NewType("DnsLabel", str)
"""A DNS label such as a namespace name: no dots, at most 63 characters."""
HostPattern = NewType("HostPattern", str)
"""A host name or shell-style pattern: ``prometheus.infra``, ``*.example.com``."""
Network = NewType("Network", str)
"""An IP network in CIDR notation (``127.0.0.0/8``) or a single address."""
#: A mapping structured later by a detector's own ``Settings`` class.
RawMapping = NewType("RawMapping", dict[str, Any])

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_HOST_PATTERN = re.compile(r"^[a-z0-9*](?:[a-z0-9*.-]{0,251}[a-z0-9*])?$")
_FORBIDDEN_IN_PATH = ("@", "#", "\\", "\r", "\n", "..", "?")


def health_path_problem(path: str) -> str | None:
    """Why ``path`` is not a safe health-check path, or ``None`` if it is."""
    if not path.startswith("/"):
        return f"health path {path!r} must start with '/'"
    if len(path) > 1024:
        return "health path is longer than 1024 characters"
    bad = [c for c in _FORBIDDEN_IN_PATH if c in path]
    if bad or not path.isprintable():
        return f"health path {path!r} must not contain {', '.join(map(repr, bad)) or 'control characters'}"
    return None


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


def dns_name_problem(name: str) -> str | None:
    if len(name) > 253 or not _DNS_NAME.match(name):
        return f"{name!r} is not a valid DNS name (lowercase letters, digits, '-', '.')"
    return None


def dns_label_problem(name: str) -> str | None:
    if not _DNS_LABEL.match(name):
        return (
            f"{name!r} is not a valid namespace name: lowercase letters, digits and '-', "
            f"at most 63 characters"
        )
    return None


def host_pattern_problem(pattern: str) -> str | None:
    if not _HOST_PATTERN.match(pattern):
        return (
            f"{pattern!r} is not a host name pattern: use lowercase letters, digits, "
            f"'-', '.' and '*' wildcards, like '*.example.com'"
        )
    return None


def network_problem(text: str) -> str | None:
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return f"{text!r} is not an IP network such as 127.0.0.0/8 or ::1"
    return None
