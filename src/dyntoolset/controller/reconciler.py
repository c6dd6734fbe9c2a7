"""The reconciler: keeps the output ConfigMap equal to the engine's cycle over the cache.

Level-triggered: an event only says "recompute soon"; every reconcile
recomputes the whole desired state from the Service cache
(:meth:`dyntoolset.pipeline.Engine.cycle`, health checks included) and
merges it into the ConfigMap as it is now. Triggers:

* Service changes (:meth:`ServiceCache.on_change`), coalesced: the first
  trigger opens a ``debounce`` window (200 ms) and everything arriving in it
  joins the same reconcile;
* events on its own ConfigMap (:meth:`Reconciler.on_configmap_event`, the
  callback of a :class:`~dyntoolset.kube.configmaps.ConfigMapWatch`), so an
  edit or a deletion is repaired at once; its own writes are ignored;
* a periodic resync (``resync_interval`` after the last reconcile);
* a retry after a temporary failure, on the jittered backoff.

One worker thread runs reconciles, so at most one is in flight and the
watch threads never wait for a health check. Nothing is written while the
cache is not synced (unknown is not empty), by a replica that is not the
leader (checked again immediately before each write), when nothing changed,
or when the result would exceed 1 MiB. A 409 re-reads the ConfigMap,
re-merges (:meth:`~dyntoolset.pipeline.Engine.remerge`, no new discovery)
and retries, a few times with jitter; then the backoff takes over.
Permanent errors (400, 403, 422, an oversized or invalid ConfigMap, a
failing renderer) are logged with what to do and retried only on the next
trigger, and never sooner than the backoff allows: no hot loop.

Whoever needs to know what it did, or that it has caught up, asks it:
:meth:`Reconciler.on_reconcile` registers a callback for every finished
reconcile, :attr:`Reconciler.idle` and :meth:`Reconciler.wait_idle` say
when no reconcile is due or running (tests, benchmarks, an embedder's
"settled" check).
"""

from __future__ import annotations

import collections
import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import attrs

from dyntoolset.controller.cycle_metrics import record_cycle
from dyntoolset.discovery import DiscoveryMemo
from dyntoolset.errors import DocumentTooLargeError, InvalidConfigMapError, RenderError
from dyntoolset.health import HealthStats
from dyntoolset.kube.errors import ApiFailure, Backoff
from dyntoolset.metrics import Metrics
from dyntoolset.model import OVERRIDES_KEY, Service
from dyntoolset.pipeline import Cycle, Engine, HealthCheck

__all__ = [
    "RESULTS",
    "SUCCESSFUL_RESULTS",
    "ControllerHealthCheck",
    "ReconcileOutcome",
    "Reconciler",
]

log = logging.getLogger(__name__)

#: Every ``result`` a reconcile can have (the ``result`` label of the metric).
RESULTS = ("success", "unchanged", "error", "skipped_not_synced", "skipped_not_leader", "dry_run")
#: The results that count as a successful reconcile (backoff reset, ``--once``
#: exit 0, the last-success timestamp; the alert rules use the same set).
SUCCESSFUL_RESULTS = frozenset({"success", "unchanged", "dry_run"})


class ServiceSource(Protocol):
    """What the reconciler needs of the Service cache
    (:class:`dyntoolset.kube.services.ServiceCache` is one)."""

    @property
    def synced(self) -> bool:
        """Whether :meth:`services` is complete."""
        ...

    def services(self) -> list[Service]:
        """The cached Services."""
        ...

    def by_key(self) -> Mapping[str, Service]:
        """The cached Services by namespace/name (what each reconcile discovers over)."""
        ...

    def on_change(self, callback: Callable[[str], None]) -> None:
        """Register ``callback(reason)``."""
        ...


class ControllerHealthCheck(HealthCheck, Protocol):
    """What the controller needs of a health checker
    (:class:`dyntoolset.health.HealthChecker` is one).

    ``check`` is the pipeline's :class:`~dyntoolset.pipeline.HealthCheck`,
    run by every reconcile's cycle; ``statistics`` is read by
    ``GET /api/v1/statistics`` (its ``health_checks`` object). An embedder's
    own checker implements both to run under the controller.
    """

    def statistics(self) -> HealthStats:
        """A snapshot of the checker's statistics.

        Called on the HTTP API's thread, possibly while a round runs on the
        reconciler's: it must be thread-safe and cheap (no request, no
        waiting for a round), returning the figures of the last finished one.
        """
        ...


class ConfigMapAccess(Protocol):
    """What the reconciler needs of the ConfigMap store
    (:class:`dyntoolset.kube.configmaps.ConfigMapStore` is one)."""

    def read(self) -> dict[str, Any] | None:
        """The ConfigMap, or ``None`` when it does not exist."""
        ...

    def write(self, configmap: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        """Create or replace; returns the stored object."""
        ...


@attrs.frozen
class ReconcileOutcome:
    """What one reconcile did."""

    #: One of :data:`RESULTS`.
    result: str
    #: Why it failed (``result == "error"``), with what to do about it.
    error: str | None = None
    #: A short label for the failure (``forbidden``, ``conflict``, ``too_large``, ...).
    error_type: str | None = None
    #: Whether a failure is worth retrying on the backoff (5xx, 429, network, conflicts).
    temporary: bool = False
    #: Whether the ConfigMap was written.
    wrote: bool = False
    #: Generated keys someone else had edited or deleted (restored when ``wrote``).
    drifted: tuple[str, ...] = ()
    #: The cycle (``None`` when it did not run).
    cycle: Cycle | None = None
    #: The ConfigMap as read before the write (for a dry run's diff).
    previous: dict[str, Any] | None = None
    #: The ConfigMap the merge produced (written unless unchanged or a dry run).
    desired: dict[str, Any] | None = None
    #: The server's ``Retry-After`` of a temporary failure, in seconds.
    retry_after: float | None = None
    #: Writes attempted (more than one after conflicts).
    attempts: int = 0
    #: Seconds the reconcile took.
    duration: float = 0.0
    #: Wall-clock end time (UTC).
    finished_at: datetime = attrs.field(factory=lambda: datetime.now(UTC))
    #: What asked for it, sorted: ``start``, ``service``, ``resync``, ``retry``,
    #: ``manual`` (:meth:`Reconciler.reconcile_now`), a ConfigMap event …
    reasons: tuple[str, ...] = ()


class Reconciler:
    """See the module docstring.

    ``engine`` runs the cycle, ``cache`` provides the Services, ``store``
    reads and writes the ConfigMap, ``health`` (optional) checks what was
    discovered, ``metrics`` receives the ConfigMap metrics, ``is_leader``
    is asked before the cycle and again immediately before every write.
    ``dry_run`` computes everything and writes nothing (``result`` is
    ``dry_run``, with ``previous`` and ``desired`` set).
    """

    def __init__(
        self,
        engine: Engine,
        cache: ServiceSource,
        store: ConfigMapAccess,
        *,
        health: ControllerHealthCheck | None = None,
        metrics: Metrics,
        is_leader: Callable[[], bool] = lambda: True,
        debounce: float = 0.2,
        resync_interval: float = 300.0,
        dry_run: bool = False,
        conflict_retries: int = 4,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self.cache = cache
        self.store = store
        self.health = health
        self.metrics = metrics
        self.is_leader = is_leader
        self.debounce = debounce
        self.resync_interval = resync_interval
        self.dry_run = dry_run
        self.conflict_retries = conflict_retries
        self.backoff = backoff or Backoff()
        self._clock = clock
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._run_lock = threading.Lock()
        # Reconciles taken (a due trigger cleared) and not yet finished; counted
        # under ``_cond`` in the same step that clears ``_due``, so no moment
        # between "due" and "running" looks idle.
        self._active = 0
        self._listeners: list[Callable[[ReconcileOutcome], None]] = []
        self._stop_event = threading.Event()
        self._reasons: set[str] = set()
        self._due: float | None = None
        self._not_before = 0.0
        self._next_resync = clock() + resync_interval
        # The last few versions we wrote: their watch events are echoes, not edits
        # (an echo may arrive after a later write of ours on a slow watch).
        self._written: collections.deque[str] = collections.deque(maxlen=16)
        # Invalid Services already reported, with why: each is logged when it
        # becomes invalid (or its reason changes), not on every reconcile.
        self._reported_invalid: dict[str, str] = {}
        self._worker: threading.Thread | None = None
        self.last_outcome: ReconcileOutcome | None = None
        #: The last outcome whose reconcile ran a discovery cycle (skipped
        #: reconciles run none): what the statistics and services API report.
        self.last_discovery: ReconcileOutcome | None = None
        self.reconciles = 0
        #: Discovery outcomes of unchanged Services, kept between reconciles
        #: (one reconcile runs at a time; another engine starts it afresh).
        #: Its ``decided``/``replayed`` counts describe the last reconcile.
        self.memo = DiscoveryMemo()

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Listen to the cache and start the worker thread; reconciles once synced."""
        if self._worker is not None:
            raise RuntimeError("Reconciler already started")
        self.cache.on_change(self.trigger)
        self._worker = threading.Thread(
            target=self._work, name="dyntoolset-reconciler", daemon=True
        )
        self._worker.start()
        self.trigger("start")

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the in-flight reconcile (if any) finishes; wait up to ``timeout``."""
        with self._cond:
            self._stop_event.set()
            self._cond.notify_all()
        if self._worker is not None:
            self._worker.join(timeout)

    @property
    def ready(self) -> bool:
        """The cache is synced and the reconciler is not stopping (leadership does not matter)."""
        return self.cache.synced and not self._stop_event.is_set()

    @property
    def idle(self) -> bool:
        """No reconcile is due (a trigger's debounce window, a scheduled retry) or running.

        The periodic resync does not count as due until it is. A stopped
        reconciler is idle once its last reconcile finished: nothing more
        runs. Triggers still on their way (a watch event not yet delivered)
        are not known here: to settle after a burst of changes, check that
        the watches have caught up first (or wait twice, a debounce apart).
        """
        with self._cond:
            return self._idle_locked()

    def _idle_locked(self) -> bool:
        if self._active:
            return False
        return self._due is None or self._stop_event.is_set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until :attr:`idle` (``True``) or ``timeout`` seconds pass (``False``).

        Whatever the reconcile that ran last published (:attr:`last_outcome`,
        the metrics, the :meth:`on_reconcile` callbacks) is visible when this
        returns ``True``. An unstarted reconciler with a trigger pending is
        never idle: nothing runs it until :meth:`start` or :meth:`reconcile_now`.
        """
        with self._cond:
            return self._cond.wait_for(self._idle_locked, timeout)

    def on_reconcile(self, callback: Callable[[ReconcileOutcome], None]) -> None:
        """Call ``callback(outcome)`` after every reconcile, on the thread that ran it.

        Called after the outcome is published and before the reconciler can
        become idle, so a :meth:`wait_idle` caller finds every callback done.
        Keep it short (it delays the next reconcile); an exception in it is
        logged and does not stop the reconciler or the other callbacks.
        """
        with self._cond:
            self._listeners.append(callback)

    @property
    def engine(self) -> Engine:
        """The engine the next reconcile will use."""
        return self._engine

    def set_engine(self, engine: Engine) -> None:
        """Use ``engine`` from the next reconcile on (an in-flight one finishes on the old)."""
        self.apply_config(engine, health=self.health, resync_interval=self.resync_interval)

    def apply_config(
        self, engine: Engine, *, health: ControllerHealthCheck | None, resync_interval: float
    ) -> None:
        """A configuration reload: swap the engine, the health checker and the resync
        interval in one step, then trigger a reconcile.

        A reconcile in flight finishes on the engine and checker it started
        with (it took both together); the next one uses the new pair.
        """
        with self._cond:
            self._engine = engine
            self.health = health
            if resync_interval != self.resync_interval:
                self.resync_interval = resync_interval
                self._next_resync = min(self._next_resync, self._clock() + resync_interval)
        self.trigger("config")

    # -- triggers -----------------------------------------------------------------------

    def trigger(self, reason: str) -> None:
        """Ask for a reconcile within ``debounce`` seconds (coalesced with other triggers)."""
        with self._cond:
            if self._stop_event.is_set():
                return
            self._reasons.add(reason)
            if self._due is None:
                self._due = self._clock() + self.debounce
            self._cond.notify_all()

    def on_configmap_event(self, reason: str, obj: dict[str, Any] | None) -> None:
        """The :class:`~dyntoolset.kube.configmaps.ConfigMapWatch` callback.

        Triggers a reconcile unless the event is the echo of this
        reconciler's own write (same resourceVersion).
        """
        version = str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")
        if reason != "configmap-deleted" and version and version in self._written:
            return
        self.trigger(reason)

    def reconcile_now(self) -> ReconcileOutcome:
        """Reconcile synchronously (waiting for an in-flight one first) and return the outcome."""
        with self._cond:
            reasons = {"manual", *self._reasons}
            self._reasons.clear()
            self._due = None
            self._active += 1
        return self._run(reasons)

    # -- the worker ---------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stop_event.is_set():
                        return
                    now = self._clock()
                    wake = (
                        self._next_resync
                        if self._due is None
                        else min(self._due, self._next_resync)
                    )
                    wake = max(wake, self._not_before)
                    if now >= wake:
                        break
                    self._cond.wait(wake - now)
                reasons = set(self._reasons) or {"resync"}
                self._reasons.clear()
                self._due = None
                self._active += 1
            try:
                self._run(reasons)
            except Exception:  # a bug must not end the controller's only worker
                log.exception("reconcile failed unexpectedly")
                with self._cond:
                    self._not_before = self._clock() + self.backoff.delay()

    def _run(self, reasons: Iterable[str]) -> ReconcileOutcome:
        """One reconcile, already counted in ``_active`` by the caller (which took it)."""
        try:
            with self._run_lock:
                started = self._clock()
                outcome = self._reconcile()
                outcome = attrs.evolve(
                    outcome, duration=self._clock() - started, reasons=tuple(sorted(reasons))
                )
                self._record(outcome, list(outcome.reasons))
                self._schedule(outcome)
                # Published last: whoever sees the outcome also sees its metrics.
                self.reconciles += 1
                if outcome.cycle is not None:
                    self.last_discovery = outcome
                self.last_outcome = outcome
                self._tell(outcome)
                return outcome
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def _tell(self, outcome: ReconcileOutcome) -> None:
        with self._cond:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(outcome)
            except Exception:  # someone else's bug must not stop the reconciler
                log.exception("a reconcile callback failed: %r", listener)

    def _schedule(self, outcome: ReconcileOutcome) -> None:
        now = self._clock()
        with self._cond:
            self._next_resync = now + self.resync_interval
            if outcome.result == "error":
                delay = self.backoff.delay(outcome.retry_after)
                self._not_before = now + delay
                if outcome.temporary:
                    self._reasons.add("retry")
                    self._due = now + delay
            elif outcome.result in SUCCESSFUL_RESULTS:
                self.backoff.reset()
                self._not_before = 0.0

    # -- one reconcile --------------------------------------------------------------------

    def _reconcile(self) -> ReconcileOutcome:
        with self._cond:  # the pair apply_config() swaps, taken together
            engine, health = self._engine, self.health
        if not self.cache.synced:
            return ReconcileOutcome("skipped_not_synced")
        if not self.dry_run and not self.is_leader():
            return ReconcileOutcome("skipped_not_leader")
        cycle: Cycle | None = None
        existing: dict[str, Any] | None = None
        attempts = 0
        try:
            existing = self.store.read()
            cycle = engine.cycle(
                self.cache.by_key(), existing=existing, health=health, memo=self.memo
            )
            while True:
                merge = cycle.merge
                assert merge is not None  # cycle(configmap=True) always merges

                done = functools.partial(
                    ReconcileOutcome,
                    cycle=cycle,
                    previous=existing,
                    desired=merge.configmap,
                    attempts=attempts,
                )
                if not merge.changed:
                    return done("unchanged")
                if self.dry_run:
                    return done("dry_run", drifted=merge.drifted)
                if not self.is_leader():
                    return done("skipped_not_leader")
                attempts += 1
                try:
                    stored = self.store.write(merge.configmap, existing)
                except ApiFailure as failure:
                    if not failure.conflict or attempts > self.conflict_retries:
                        raise
                    log.info(
                        "configmap %s changed while reconciling (%s); re-reading and merging again",
                        _name_of(merge.configmap),
                        failure.reason,
                    )
                    # Jittered and short: the other writer is done; spread out competing replicas.
                    self._stop_event.wait(self._rng.uniform(0.0, 0.05 * attempts))
                    existing = self.store.read()
                    cycle = engine.remerge(cycle, existing)
                    continue
                version = str((stored.get("metadata") or {}).get("resourceVersion") or "")
                if version:
                    self._written.append(version)
                return attrs.evolve(
                    done("success", wrote=True, drifted=merge.drifted), attempts=attempts
                )
        except ApiFailure as failure:
            outcome = _error(
                str(failure),
                "conflict" if failure.conflict else failure.error_type,
                failure.temporary or failure.conflict,
                cycle,
                existing,
                attempts,
            )
            return attrs.evolve(outcome, retry_after=failure.retry_after)
        except DocumentTooLargeError as exc:
            return _error(
                f"{exc}; the ConfigMap was left as it is (narrow the detectors or formats)",
                "too_large",
                False,
                cycle,
                existing,
                attempts,
            )
        except InvalidConfigMapError as exc:
            return _error(
                f"{exc}; fix or delete the ConfigMap",
                "invalid_configmap",
                False,
                cycle,
                existing,
                attempts,
            )
        except RenderError as exc:
            return _error(str(exc), "render", False, cycle, existing, attempts)
        except Exception as exc:  # a bug (a plugin's, a health checker's): report, do not die
            log.exception("reconcile failed unexpectedly")
            return _error(
                f"unexpected error: {exc!r}", "internal", False, cycle, existing, attempts
            )

    # -- reporting ------------------------------------------------------------------------

    def _record(self, outcome: ReconcileOutcome, reasons: list[str]) -> None:
        m = self.metrics
        m.configmap_reconciliations.labels(result=outcome.result).inc()
        m.configmap_reconcile_duration.observe(outcome.duration)
        if outcome.result == "error":
            m.configmap_update_errors.labels(error_type=outcome.error_type or "unknown").inc()
        elif outcome.result in SUCCESSFUL_RESULTS:
            m.configmap_last_success.set(outcome.finished_at.timestamp())
        if outcome.wrote:
            m.configmap_updates.inc()
            m.generations.inc()
            if outcome.drifted:
                m.configmap_drift_detections.inc(len(outcome.drifted))
                m.configmap_drift_detected.inc(len(outcome.drifted))
        cycle = outcome.cycle
        if cycle is not None:
            record_cycle(m, cycle)
            self._report_invalid(cycle)
        counts = (
            f" services={cycle.discovery.services_seen} discovered={len(cycle.discovery.discovered)}"
            f" emitted={len(cycle.emitted)}"
            if cycle is not None
            else ""
        )
        fields = {
            "event": "reconcile",
            "result": outcome.result,
            "reasons": reasons,
            "wrote": outcome.wrote,
            "attempts": outcome.attempts,
            "duration_seconds": round(outcome.duration, 4),
        }
        if outcome.result == "error":
            level = logging.WARNING if outcome.temporary else logging.ERROR
            log.log(
                level,
                "reconcile failed (%s, %s): %s",
                outcome.error_type,
                "will retry"
                if outcome.temporary
                else "permanent until the configuration, RBAC or ConfigMap changes",
                outcome.error,
                extra={"dyntoolset": {**fields, "error_type": outcome.error_type}},
            )
            return
        quiet = outcome.result in ("unchanged", "skipped_not_synced", "skipped_not_leader")
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "reconcile %s%s reasons=%s duration=%.3fs",
            outcome.result,
            counts,
            ",".join(reasons),
            outcome.duration,
            extra={"dyntoolset": fields},
        )
        if outcome.wrote and outcome.desired is not None:
            log.info(
                "configmap %s %s (%d keys, %d write attempts)",
                _name_of(outcome.desired),
                "created" if outcome.previous is None else "updated",
                len(outcome.desired.get("data") or {}),
                outcome.attempts,
                extra={"dyntoolset": {**fields, "event": "write"}},
            )
        if outcome.wrote and outcome.drifted:
            log.warning(
                "configmap %s: generated keys %s were edited or deleted by someone else and have "
                "been restored; put changes in %s instead",
                _name_of(outcome.desired or {}),
                ", ".join(outcome.drifted),
                OVERRIDES_KEY,
                extra={"dyntoolset": {**fields, "event": "drift", "keys": list(outcome.drifted)}},
            )

    def _report_invalid(self, cycle: Cycle) -> None:
        """Warn once about each Service that opts in but is malformed, and when it is fixed."""
        invalid = _invalid_services(cycle)
        for key, why in sorted(invalid.items()):
            if self._reported_invalid.get(key) != why:
                log.warning(
                    "skipping Service %s %s",
                    key,
                    why,
                    extra={"dyntoolset": {"event": "invalid_service", "service": key}},
                )
        for key in sorted(self._reported_invalid.keys() - invalid.keys()):
            log.info("Service %s is no longer skipped as invalid", key)
        self._reported_invalid = invalid


def _invalid_services(cycle: Cycle) -> dict[str, str]:
    return {
        skip.service: f"(invalid, detector {skip.detector}): {skip.detail}"
        for skip in cycle.discovery.skips
        if skip.reason == "invalid"
    }


def _error(
    message: str,
    error_type: str,
    temporary: bool,
    cycle: Cycle | None,
    existing: dict[str, Any] | None,
    attempts: int,
) -> ReconcileOutcome:
    return ReconcileOutcome(
        "error",
        error=message,
        error_type=error_type,
        temporary=temporary,
        cycle=cycle,
        previous=existing,
        attempts=attempts,
    )


def _name_of(configmap: dict[str, Any]) -> str:
    meta = configmap.get("metadata") or {}
    return f"{meta.get('namespace', '?')}/{meta.get('name', '?')}"
