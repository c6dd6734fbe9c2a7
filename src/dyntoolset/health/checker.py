"""The health checker: rounds of bounded-parallel checks with cache and hysteresis.

One :class:`HealthChecker` lives as long as the service (or one CLI run) and
keeps, per discovered service, the last result and the count of consecutive
failures between rounds. Each :meth:`HealthChecker.check` call is one round:

1. results younger than ``cache_ttl`` are reused (no request);
2. the rest are checked, at most ``concurrency`` at a time, each with its
   detector's ``timeout`` and ``retries`` (exponential backoff with jitter
   between attempts);
3. the round ends at ``deadline`` whatever is still running: in-flight
   attempts are cut (their sockets shut down) and count as ``timeout``;
   checks that never started keep their previous result;
4. hysteresis: a service that was healthy stays in the toolsets until
   ``failure_threshold`` consecutive failed checks; a new (or dropped)
   service needs one successful check.

The result is the input with :attr:`~dyntoolset.model.Discovered.health`
set; :func:`select_healthy` is the pure filter that decides what is emitted.
"""

from __future__ import annotations

import concurrent.futures
import logging
import random
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from dyntoolset.config import Config, DetectorHealthCheck, GlobalHealthChecks
from dyntoolset.health.guard import (
    Blocked,
    Resolver,
    Target,
    build_target,
    parse_networks,
    system_resolver,
)
from dyntoolset.health.probe import (
    BLOCKED,
    CONNECTION_ERROR,
    CONNECTION_REFUSED,
    HTTP_STATUS,
    OK,
    TIMEOUT,
    UNCHECKED,
    Answer,
    Cancellation,
    Connector,
    DirectTransport,
    ProbeFailure,
    Transport,
    _connect,
)
from dyntoolset.metrics import Metrics
from dyntoolset.model import Discovered, HealthStatus
from dyntoolset.pipeline import select_healthy

log = logging.getLogger(__name__)

__all__ = [
    "HealthChecker",
    "HealthStats",
    "backoff_delay",
    "check_offline",
    "offline_checker",
    "select_healthy",
]

#: Reasons of a healthy result.
_HEALTHY = frozenset({OK, UNCHECKED})
#: Reasons worth another attempt; the others will not change within a round.
_RETRYABLE = frozenset({TIMEOUT, CONNECTION_REFUSED, CONNECTION_ERROR})


def backoff_delay(retry: int, base: float, cap: float, rng: random.Random) -> float:
    """Delay before retry number ``retry`` (0 for the first): ``base * 2**retry``, capped,
    then jittered to between 50 % and 100 % of that.

    Jitter spreads retries of many failing services so they do not arrive in
    waves; keeping half the delay guarantees a real pause between attempts.
    """
    delay = min(float(cap), float(base) * (2.0**retry))
    return delay / 2 + float(rng.uniform(0, delay / 2))


@attrs.frozen
class HealthStats:
    """Statistics of the checker (for ``/api/v1/statistics``)."""

    rounds: int = 0
    last_round_seconds: float = 0.0
    last_round_deadline_exceeded: bool = False
    #: Services checked (requests made) in the last round.
    last_round_checked: int = 0
    #: Services whose cached result was reused in the last round.
    last_round_cached: int = 0
    #: Services not reached before the last round's deadline.
    last_round_not_started: int = 0
    #: Services currently healthy / unhealthy (after hysteresis).
    healthy: int = 0
    unhealthy: int = 0
    #: Services by the reason of their latest result (``ok``, ``timeout`` …).
    by_reason: Mapping[str, int] = attrs.field(factory=dict)
    #: Failed checks since start: detector -> reason -> count.
    failures: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    #: ``direct`` or ``apiserver-proxy``.
    mode: str = "direct"


@attrs.define
class _State:
    fingerprint: tuple[str, ...]
    status: HealthStatus | None = None
    checked_at: float | None = None  # checker clock, for the TTL
    failures: int = 0
    included: bool = False


@attrs.frozen
class _Outcome:
    reason: str
    detail: str
    attempts: int
    #: False when the round's deadline passed before the first attempt.
    started: bool = True


class HealthChecker:
    """Checks discovered services; the only place that makes health-check requests.

    ``options`` is the global ``health_checks:`` section; ``per_detector``
    maps a detector name to its ``health_check:`` settings (timeout,
    retries; the path is already on each :class:`Discovered`). Keyword-only:

    ``cluster_domain``
        Endpoint hosts must be the Service's own DNS name under this domain
        (or match ``allowed_hosts``).
    ``transport``
        How checks of a Service's own DNS name are made; ``None`` (the
        default) connects directly. Out of a cluster the controller passes
        :class:`dyntoolset.kube.proxy.ApiServerProxyTransport`, chosen by
        :func:`dyntoolset.kube.proxy.health_transport` from ``mode``.
    ``resolver`` / ``connect``
        Name resolution and TCP connect of direct mode; the defaults are the
        system resolver and ``socket.create_connection``.
    ``metrics``
        Where to count checks and failures (a fresh :class:`Metrics` if unset).
    ``clock`` / ``wall_clock`` / ``rng``
        Monotonic clock for the cache TTL, Unix time for ``checked_at``, and
        the random source of the backoff jitter.
    ``backoff_base`` / ``backoff_max``
        Delay before the first retry and the cap of the doubling delays.

    Raises ``ValueError`` for an invalid ``allowed_networks`` entry, an
    unreadable ``ca_file``, or ``mode: apiserver-proxy`` without a transport.
    :meth:`check` is thread-safe (rounds are serialised).
    """

    def __init__(
        self,
        options: GlobalHealthChecks,
        per_detector: Mapping[str, DetectorHealthCheck] | None = None,
        *,
        cluster_domain: str = "cluster.local",
        transport: Transport | None = None,
        resolver: Resolver = system_resolver,
        connect: Connector = _connect,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        backoff_base: float = 0.2,
        backoff_max: float = 2.0,
    ) -> None:
        self.options = options
        self.per_detector: Mapping[str, DetectorHealthCheck] = dict(per_detector or {})
        self.cluster_domain = cluster_domain
        self.metrics = metrics if metrics is not None else Metrics()
        self._clock = clock
        self._wall = wall_clock
        self._rng = rng if rng is not None else random.Random()
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        try:
            allowed = parse_networks(options.allowed_networks)
        except ValueError as exc:
            raise ValueError(f"health_checks.allowed_networks: {exc}") from None
        try:
            context = ssl.create_default_context(cafile=options.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"health_checks.ca_file {options.ca_file!r}: {exc}") from None
        self._direct = DirectTransport(
            ssl_context=context,
            resolver=resolver,
            allowed_networks=allowed,
            max_body_bytes=options.max_body_bytes,
            connect=connect,
        )
        if transport is None and options.mode == "apiserver-proxy":
            raise ValueError(
                "health_checks.mode apiserver-proxy needs the API server's proxy transport "
                "(dyntoolset.kube.proxy.health_transport)"
            )
        self._transport: Transport = transport if transport is not None else self._direct
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], _State] = {}
        self._failures: Counter[tuple[str, str]] = Counter()
        self._stats = HealthStats(mode=self.mode)

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> HealthChecker:
        """A checker for ``config``: its ``health_checks`` section, every detector's
        ``health_check`` block and its cluster domain. ``kwargs`` as for the constructor."""
        per_detector = {name: d.health_check for name, d in config.detectors.items()}
        kwargs.setdefault("cluster_domain", config.cluster_domain)
        return cls(config.health_checks, per_detector, **kwargs)

    def inherit(self, previous: HealthChecker) -> None:
        """Take over ``previous``'s per-service state (results, failure counts, cache).

        For configuration reloads: build a checker from the new configuration,
        call this, and hysteresis and the cache carry on instead of restarting.
        Entries whose endpoint, path or mode changed are re-checked anyway.
        """
        with previous._lock:
            states = {key: attrs.evolve(state) for key, state in previous._states.items()}
            failures = Counter(previous._failures)
            stats = previous._stats
        with self._lock:
            self._states = states
            self._failures = failures
            self._stats = attrs.evolve(stats, mode=self.mode)

    @property
    def mode(self) -> str:
        """The effective mode: ``direct`` or ``apiserver-proxy``."""
        return self._transport.name

    def statistics(self) -> HealthStats:
        """A snapshot of the checker's statistics."""
        return self._stats

    # -- one round ------------------------------------------------------------

    def check(self, discovered: Sequence[Discovered]) -> list[Discovered]:
        """Run one round; return ``discovered`` (same order) with ``health`` set.

        With ``health_checks.enabled: false`` nothing is checked and
        ``health`` is left ``None`` (which :func:`select_healthy` keeps).
        Returns within ``health_checks.deadline`` (plus scheduling slack).
        """
        if not self.options.enabled:
            return list(discovered)
        with self._lock:
            return self._round(discovered)

    def _round(self, discovered: Sequence[Discovered]) -> list[Discovered]:
        started = time.monotonic()
        deadline = started + self.options.deadline
        now = self._clock()
        keys = [(d.key, d.detector) for d in discovered]
        # Forget services that are gone, so state does not grow without bound.
        for key in set(self._states) - set(keys):
            del self._states[key]

        to_check: list[tuple[tuple[str, str], Discovered]] = []
        queued: set[tuple[str, str]] = set()
        cached = 0
        for key, item in zip(keys, discovered, strict=True):
            fingerprint = (item.endpoint, item.health_path, item.detector, self.mode)
            state = self._states.get(key)
            if state is None or state.fingerprint != fingerprint:
                # A new or re-pointed endpoint starts over: it needs one success.
                state = self._states[key] = _State(fingerprint)
            fresh = state.checked_at is not None and now - state.checked_at < self.options.cache_ttl
            if fresh:
                cached += 1
            elif key not in queued:
                queued.add(key)
                to_check.append((key, item))

        # The stalest first: what a cut-short round left unchecked goes first next time.
        def staleness(pair: tuple[tuple[str, str], Discovered]) -> float:
            checked_at = self._states[pair[0]].checked_at
            return float("-inf") if checked_at is None else checked_at

        to_check.sort(key=staleness)

        cancel = Cancellation()
        outcomes: dict[tuple[str, str], _Outcome] = {}
        not_started: set[tuple[str, str]] = set()
        exceeded = False
        in_flight = 0
        if to_check:
            workers = min(self.options.concurrency, len(to_check))
            pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="health-check"
            )
            try:
                futures = {
                    pool.submit(self._check_one, item, deadline, cancel): key
                    for key, item in to_check
                }
                done, pending = concurrent.futures.wait(
                    futures, timeout=max(0.0, deadline - time.monotonic())
                )
                if pending:
                    exceeded = True
                    for future in pending:
                        if future.cancel():
                            not_started.add(futures[future])
                    in_flight = len(pending) - len(not_started)
                    cancel.cancel()
                for future, key in futures.items():
                    if future in done:
                        done_outcome = future.result()
                        if done_outcome.started:
                            outcomes[key] = done_outcome
                        else:
                            not_started.add(key)
                    elif key not in not_started:
                        outcomes[key] = _Outcome(TIMEOUT, "cut by the round's deadline", 0)
            finally:
                # Do not wait: cancelled attempts unwind on their own in moments.
                pool.shutdown(wait=False, cancel_futures=True)
            exceeded = exceeded or bool(not_started)

        checked_now = self._clock()
        wall = self._wall()
        for key, item in to_check:
            state = self._states[key]
            finished = outcomes.get(key)
            if finished is None:
                if state.status is None:
                    state.status = HealthStatus(
                        healthy=False,
                        reason=TIMEOUT,
                        checked_at=wall,
                        detail="not checked before the round's deadline",
                    )
                continue
            self._record(item, state, finished, checked_now, wall)

        result = []
        for key, item in zip(keys, discovered, strict=True):
            result.append(attrs.evolve(item, health=self._states[key].status))
        elapsed = time.monotonic() - started
        self.metrics.health_check_cycle_duration.observe(elapsed)
        if exceeded:
            self.metrics.health_check_deadline_exceeded.inc()
            log.warning(
                "health checks: round cut by its %.1fs deadline (%d in flight, %d not started); "
                "raise health_checks.concurrency or deadline, or lower timeouts",
                self.options.deadline,
                in_flight,
                len(not_started),
            )
        statuses = [s.status for s in self._states.values() if s.status is not None]
        failures: dict[str, dict[str, int]] = {}
        for (detector, reason), count in sorted(self._failures.items()):
            failures.setdefault(detector, {})[reason] = count
        self._stats = HealthStats(
            rounds=self._stats.rounds + 1,
            last_round_seconds=elapsed,
            last_round_deadline_exceeded=exceeded,
            last_round_checked=len(to_check) - len(not_started),
            last_round_cached=cached,
            last_round_not_started=len(not_started),
            healthy=sum(1 for s in statuses if s.healthy),
            unhealthy=sum(1 for s in statuses if not s.healthy),
            by_reason=dict(sorted(Counter(s.reason for s in statuses).items())),
            failures=failures,
            mode=self.mode,
        )
        return result

    def _record(
        self, item: Discovered, state: _State, outcome: _Outcome, now: float, wall: float
    ) -> None:
        """Apply one finished check to the service's state (hysteresis) and the metrics."""
        detector = item.detector
        self.metrics.health_checks.labels(detector=detector, result=outcome.reason).inc()
        state.checked_at = now
        if outcome.reason in _HEALTHY:
            if not state.included:
                log.info("health check: %s (%s) is healthy", item.key, detector)
            state.failures = 0
            state.included = True
            state.status = HealthStatus(True, outcome.reason, wall, outcome.detail)
            return
        self._failures[(detector, outcome.reason)] += 1
        self.metrics.health_check_failures.labels(detector=detector, reason=outcome.reason).inc()
        state.failures += 1
        threshold = self.options.failure_threshold
        if state.included and state.failures < threshold:
            detail = (
                f"{outcome.detail} (failure {state.failures} of {threshold}: "
                "kept in the toolsets until the threshold)"
            )
            log.info("health check: %s (%s) failed, kept: %s", item.key, detector, detail)
            state.status = HealthStatus(True, outcome.reason, wall, detail, state.failures)
            return
        if state.included:
            log.warning(
                "health check: %s (%s) dropped after %d consecutive failures: %s: %s",
                item.key,
                detector,
                state.failures,
                outcome.reason,
                outcome.detail,
            )
        else:
            log.debug(
                "health check: %s (%s): %s: %s", item.key, detector, outcome.reason, outcome.detail
            )
        state.included = False
        state.status = HealthStatus(False, outcome.reason, wall, outcome.detail, state.failures)

    # -- one service ----------------------------------------------------------

    def _settings(self, detector: str) -> DetectorHealthCheck:
        return self.per_detector.get(detector) or DetectorHealthCheck()

    def _check_one(self, item: Discovered, deadline: float, cancel: Cancellation) -> _Outcome:
        """All attempts of one check (runs in a worker thread); never raises."""
        try:
            return self._attempts(item, deadline, cancel)
        except Exception as exc:
            # A bug (or a misbehaving injected resolver) must not end the round.
            log.exception("health check of %s failed unexpectedly", item.key)
            return _Outcome(CONNECTION_ERROR, f"internal error: {type(exc).__name__}: {exc}", 0)

    def _attempts(self, item: Discovered, deadline: float, cancel: Cancellation) -> _Outcome:
        settings = self._settings(item.detector)
        if item.health_check == "none":
            return _Outcome(UNCHECKED, "not checked: its health check kind is 'none'", 0)
        if item.health_check == "tcp":
            return self._tcp_attempts(item, settings, deadline, cancel)
        path = item.health_path or settings.path or "/"
        try:
            target = build_target(
                item,
                path,
                cluster_domain=self.cluster_domain,
                allowed_hosts=self.options.allowed_hosts,
            )
            # The API server can only proxy to the Service itself; an allow-listed
            # foreign host is reached directly, under the same address guards.
            transport = self._transport if target.own_host else self._direct
            prepared = transport.prepare(item, target)
        except Blocked as exc:
            return _Outcome(BLOCKED, str(exc), 0)
        except ProbeFailure as exc:
            return _Outcome(exc.reason, exc.detail, 0)

        def attempt(timeout: float) -> tuple[str, str]:
            return self._judge(transport.fetch(prepared, timeout, cancel))

        return self._retry(attempt, settings, deadline, cancel)

    def _tcp_attempts(
        self,
        item: Discovered,
        settings: DetectorHealthCheck,
        deadline: float,
        cancel: Cancellation,
    ) -> _Outcome:
        """Connect to the Service's own DNS name on its port; nothing is sent.

        Always the Service's own name (never an endpoint override), pinned and
        judged by the same address rules as HTTP checks. The API server's
        service proxy speaks only HTTP, so in ``apiserver-proxy`` mode the
        service is included unchecked, saying why.
        """
        if self._transport is not self._direct:
            return _Outcome(
                UNCHECKED,
                f"not checked: a TCP check cannot be made through the API server's proxy "
                f"(health_checks.mode {self.mode})",
                0,
            )
        if item.port is None:
            return _Outcome(
                BLOCKED, "a TCP check needs the Service's port; the detector gave none", 0
            )
        target = Target(
            scheme="tcp",
            host=item.service.dns_name(self.cluster_domain),
            port=item.port.port,
            path="",
            own_host=True,
        )
        try:
            prepared = self._direct.prepare(item, target)
        except Blocked as exc:
            return _Outcome(BLOCKED, str(exc), 0)
        except ProbeFailure as exc:
            return _Outcome(exc.reason, exc.detail, 0)
        where = f"{target.host}:{target.port}"

        def attempt(timeout: float) -> tuple[str, str]:
            self._direct.connect_only(prepared, timeout, cancel)
            return OK, f"TCP connect to {where}"

        return self._retry(attempt, settings, deadline, cancel)

    def _retry(
        self,
        attempt_once: Callable[[float], tuple[str, str]],
        settings: DetectorHealthCheck,
        deadline: float,
        cancel: Cancellation,
    ) -> _Outcome:
        """Up to ``1 + retries`` attempts within the round's deadline, with backoff."""

        attempts = 1 + int(settings.retries)
        outcome = _Outcome(TIMEOUT, "no attempt made before the round's deadline", 0, False)
        for attempt in range(attempts):
            remaining = deadline - time.monotonic()
            if cancel.cancelled or remaining <= 0:
                break
            timeout = min(float(settings.timeout), remaining)
            try:
                reason, detail = attempt_once(timeout)
            except ProbeFailure as exc:
                reason, detail = exc.reason, exc.detail
            outcome = _Outcome(reason, detail, attempt + 1)
            if not _retryable(reason, detail) or attempt + 1 == attempts:
                break
            delay = backoff_delay(attempt, self._backoff_base, self._backoff_max, self._rng)
            if cancel.event.wait(min(delay, max(0.0, deadline - time.monotonic()))):
                break
        return outcome

    def _judge(self, answer: Answer) -> tuple[str, str]:
        """``(reason, detail)`` for an HTTP answer: 2xx is healthy; 3xx only if configured."""
        status = answer.status
        if 200 <= status < 300:
            return OK, f"HTTP {status}"
        if 300 <= status < 400:
            where = f" to {answer.location!r}" if answer.location else ""
            if self.options.redirects_are_healthy:
                return OK, f"HTTP {status} (redirect{where} not followed; counted as healthy)"
            return HTTP_STATUS, f"HTTP {status}: redirect{where} not followed"
        snippet = answer.body[:200].decode("utf-8", "replace")
        snippet = "".join(c if c.isprintable() else " " for c in snippet).strip()
        return HTTP_STATUS, f"HTTP {status}" + (f": {snippet}" if snippet else "")


def _retryable(reason: str, detail: str) -> bool:
    if reason in _RETRYABLE:
        return True
    # 5xx and 429 are worth another try; 3xx and other 4xx will not change.
    if reason == HTTP_STATUS and detail.startswith("HTTP "):
        code = detail[5:8]
        return code.startswith("5") or code == "429"
    return False


def offline_checker(
    config: Config,
    *,
    resolver: Resolver = system_resolver,
    metrics: Metrics | None = None,
) -> HealthChecker:
    """A direct-mode checker for ``config``, enabled whatever the configuration says:
    what ``dyntoolset discover --health-check`` passes to :meth:`Engine.cycle`.

    Raises ``ValueError`` for an unusable ``ca_file`` or ``allowed_networks``.
    """
    options = attrs.evolve(config.health_checks, mode="direct", enabled=True)
    per_detector = {name: d.health_check for name, d in config.detectors.items()}
    return HealthChecker(
        options,
        per_detector,
        cluster_domain=config.cluster_domain,
        resolver=resolver,
        metrics=metrics,
    )


def check_offline(
    discovered: Sequence[Discovered],
    config: Config,
    *,
    resolver: Resolver = system_resolver,
    metrics: Metrics | None = None,
) -> list[Discovered]:
    """One round of :func:`offline_checker` over ``discovered``.

    Returns every service with ``health`` set (a service needs one success to
    be healthy); filter with
    ``select_healthy(result, config.health_checks.include_unhealthy)``.
    """
    return offline_checker(config, resolver=resolver, metrics=metrics).check(discovered)
