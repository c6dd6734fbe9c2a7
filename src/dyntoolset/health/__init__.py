"""Health checks of discovered services: the only module that makes these requests.

Public API (see ``docs/health-checks.md``):

* :class:`HealthChecker` — rounds of checks with bounded parallelism, a
  deadline per round, a result cache and hysteresis;
  :meth:`HealthChecker.from_config` builds one from a :class:`~dyntoolset.config.Config`.
* :func:`select_healthy` — the pure filter deciding which services are emitted.
* :func:`offline_checker` — the direct-mode checker of ``dyntoolset discover --health-check``;
  :func:`check_offline` runs one round of it.
* :mod:`dyntoolset.health.guard` — the SSRF guards (URL, path, host and address rules).
* :mod:`dyntoolset.health.probe` — the direct and API-server-proxy transports.
"""

from dyntoolset.health.checker import (
    HealthChecker,
    HealthStats,
    backoff_delay,
    check_offline,
    offline_checker,
)
from dyntoolset.health.guard import Blocked, Target, build_target, pin_address, system_resolver
from dyntoolset.health.probe import REASONS
from dyntoolset.pipeline import select_healthy

__all__ = [
    "REASONS",
    "Blocked",
    "HealthChecker",
    "HealthStats",
    "Target",
    "backoff_delay",
    "build_target",
    "check_offline",
    "offline_checker",
    "pin_address",
    "select_healthy",
    "system_resolver",
]
