"""Leader election on a ``coordination.k8s.io/v1`` Lease.

:class:`LeaderElector` follows client-go's ``leaderelection`` package:

* **Timings.** Lease duration 15 s, renew deadline 10 s, retry period 2 s;
  a follower's retries are jittered (factor 1.2) so replicas do not knock in
  step.
* **Expiry on the local monotonic clock.** A follower never compares the
  Lease's ``renewTime`` with its own wall clock (clocks of two nodes differ).
  It records *when it observed* the holder's record last change and treats
  the Lease as held until ``lease_duration`` has passed on its own monotonic
  clock after that.
* **Leadership is a deadline.** :meth:`LeaderElector.is_leader` is true only
  while less than ``renew_deadline`` has passed since the start of the last
  successful acquire or renew request, so it turns false by itself when
  renewals fail (or hang), before any follower may take over: a follower
  waits ``lease_duration`` (> ``renew_deadline``) after it saw the last renew.
* **Optimistic concurrency.** Every write replaces the Lease with the
  ``resourceVersion`` just read; a 409 means someone else won this round.
* **Release on shutdown** as client-go's ``ReleaseOnCancel``: the holder is
  cleared and ``leaseDurationSeconds`` set to 1, so a follower takes over at
  its next retry instead of waiting out the lease.

The Lease is read and written as raw JSON (``_preload_content=False``) with
a ``(connect, read)`` timeout on every call.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from kubernetes import client as k8s

from dyntoolset.kube.errors import ApiFailure, classify

__all__ = ["LeaderElector", "LeaseTimings"]

log = logging.getLogger("dyntoolset.lease")

#: client-go's JitterFactor for a follower's retries.
_JITTER = 1.2


class LeaseTimings:
    """The three durations of leader election, in seconds (client-go's defaults).

    ``lease_duration > renew_deadline > retry_period > 0`` is required: the
    gap between the first two is what keeps two leaders from overlapping.
    """

    def __init__(
        self, lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0
    ) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError(
                "leader election needs lease_duration > renew_deadline > retry_period > 0, got "
                f"{lease_duration} / {renew_deadline} / {retry_period}"
            )
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period


def default_identity() -> str:
    """``<hostname>_<uuid>``: unique per process, readable in ``kubectl get lease``."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _micro_time(moment: _dt.datetime) -> str:
    """A Kubernetes ``MicroTime`` (RFC 3339 with microseconds, UTC)."""
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(spec: dict[str, Any]) -> tuple[Any, ...]:
    """The fields whose change means "the holder did something" (client-go compares these)."""
    return tuple(
        spec.get(k)
        for k in (
            "holderIdentity",
            "leaseDurationSeconds",
            "acquireTime",
            "renewTime",
            "leaseTransitions",
        )
    )


class LeaderElector:
    """Compete for the Lease ``namespace/name``; lead while holding it.

    ``api_client`` is a ``kubernetes.client.ApiClient``. ``on_started_leading``
    and ``on_stopped_leading`` are called (without arguments) from the
    elector's thread when leadership is gained or lost (lost: the renew
    deadline passed, another holder was seen, or :meth:`stop`); they must not
    block. ``clock`` is the monotonic clock (injectable for tests);
    ``request_timeout`` is ``(connect, read)`` for every call (default: half
    the renew deadline each, so one hung call cannot eat the deadline).
    """

    def __init__(
        self,
        api_client: Any,
        *,
        name: str,
        namespace: str,
        identity: str | None = None,
        timings: LeaseTimings | None = None,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        request_timeout: tuple[float, float] | None = None,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.timings = timings or LeaseTimings()
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        # Any: called with raw dict bodies and _preload_content=False (not the typed models).
        self._api: Any = k8s.CoordinationV1Api(api_client)
        self._clock = clock
        half = self.timings.renew_deadline / 2
        self._timeout = request_timeout or (half, half)
        self._lock = threading.RLock()
        self._leading = False
        self._renewed_at = 0.0  # clock() when the last successful request started
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0  # clock() when _observed was last seen to change
        self._lease: dict[str, Any] | None = None  # the Lease as last read or written
        self._stop = threading.Event()
        self._closed = False  # stop() was called: no more rounds, no leadership
        self._thread: threading.Thread | None = None
        self._random = random.Random()

    # -- public -----------------------------------------------------------------

    def is_leader(self) -> bool:
        """True while this process holds the Lease and its renew deadline has not passed.

        Check it immediately before every leader-only write.
        """
        with self._lock:
            return self._leading and self._clock() - self._renewed_at < self.timings.renew_deadline

    @property
    def holder(self) -> str | None:
        """The holder identity last observed on the Lease (``None``: unheld or not read yet)."""
        with self._lock:
            return None if self._observed is None else self._observed[0] or None

    def start(self) -> None:
        """Start competing in a daemon thread (idempotent)."""
        if self._thread is not None:
            return
        with self._lock:
            self._closed = False
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lease-elector", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop competing; if leading, give up leadership and release the Lease.

        Leadership ends (``is_leader()`` false, ``on_stopped_leading`` called)
        *before* the release is written, so nothing leader-only runs after
        another replica may have taken over.
        """
        with self._lock:
            self._closed = True  # a round still in flight can no longer make us leader
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout if timeout is not None else sum(self._timeout) * 2 + 1)
        self._lose("shutting down", expected=True)
        # Also when the renew deadline has passed: if the Lease still names us,
        # releasing it spares the followers the wait (a newer holder's Lease
        # has another resourceVersion, so the release cannot overwrite it).
        self.release()

    def try_acquire_or_renew(self) -> bool:
        """One round: read the Lease and take or renew it if that is allowed.

        True when this process holds the Lease after the round. The loop of
        :meth:`start` calls it every retry period; tests may call it directly.
        """
        if self._closed:
            return False
        started = self._clock()
        now = _dt.datetime.now(_dt.UTC)
        try:
            lease = self._read()
        except ApiFailure as failure:
            log.debug("lease %s/%s: read failed: %s", self.namespace, self.name, failure)
            return False
        if lease is None:
            spec = self._spec(now, acquired=now, transitions=0)
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": spec,
            }
            return self._write(body, started, create=True)

        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        mine = holder == self.identity
        duration = float(spec.get("leaseDurationSeconds") or self.timings.lease_duration)
        with self._lock:
            record = _record(spec)
            if record != self._observed:
                self._observed = record
                self._observed_at = self._clock()
            held_by_other = bool(holder) and not mine
            valid = self._clock() < self._observed_at + duration
        if held_by_other and valid:
            self._lose(f"the Lease is held by {holder}")
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if mine:
            acquired = spec.get("acquireTime")
            new_spec = self._spec(now, acquired=None, transitions=transitions)
            new_spec["acquireTime"] = acquired or _micro_time(now)
        else:
            new_spec = self._spec(now, acquired=now, transitions=transitions + 1)
        body = dict(lease)
        body["spec"] = {**spec, **new_spec}
        return self._write(body, started, create=False)

    def release(self) -> bool:
        """Clear the holder and shorten the lease to 1 s, if this process still holds it.

        Returns whether the release was written. Called by :meth:`stop`.
        """
        with self._lock:
            lease = self._lease
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return False
        now = _dt.datetime.now(_dt.UTC)
        spec = dict(lease.get("spec") or {})
        spec.update(
            holderIdentity=None,
            leaseDurationSeconds=1,
            acquireTime=_micro_time(now),
            renewTime=_micro_time(now),
        )
        try:
            self._call("replace", body={**lease, "spec": spec})
        except ApiFailure as failure:
            log.warning(
                "lease %s/%s: release failed (a follower takes over when it expires): %s",
                self.namespace,
                self.name,
                failure,
            )
            return False
        log.info(
            "lease %s/%s released by %s",
            self.namespace,
            self.name,
            self.identity,
            extra={"dyntoolset": {**self._fields(leader=False), "event": "lease_released"}},
        )
        return True

    def _fields(self, **more: Any) -> dict[str, Any]:
        """The structured fields of a leadership log line."""
        return {
            "event": "leadership",
            "lease": f"{self.namespace}/{self.name}",
            "identity": self.identity,
            **more,
        }

    # -- the loop ---------------------------------------------------------------

    def _run(self) -> None:
        retry = self.timings.retry_period
        while not self._stop.is_set():
            try:
                self.try_acquire_or_renew()
            except Exception:  # the elector thread must not die silently
                log.exception("lease %s/%s: unexpected error", self.namespace, self.name)
            with self._lock:
                expired = self._leading and not self.is_leader()
            if expired:
                self._lose("the renew deadline passed")
            leading = self._leading
            # A leader renews every retry period; a follower jitters its retries.
            wait = retry if leading else retry * (1 + self._random.random() * _JITTER)
            self._stop.wait(wait)

    # -- state changes ----------------------------------------------------------

    def _won(self, started: float, lease: dict[str, Any]) -> None:
        with self._lock:
            self._lease = lease
            self._observed = _record(lease.get("spec") or {})
            self._observed_at = self._clock()
            if self._closed:
                return  # stopped meanwhile: the Lease expires (or stop() released it)
            self._renewed_at = started
            newly = not self._leading
            self._leading = True
        if newly:
            log.info(
                "leadership acquired: %s holds lease %s/%s",
                self.identity,
                self.namespace,
                self.name,
                extra={"dyntoolset": self._fields(leader=True)},
            )
            self._callback(self.on_started_leading)

    def _lose(self, why: str, *, expected: bool = False) -> None:
        with self._lock:
            if not self._leading:
                return
            self._leading = False
        log.log(
            logging.INFO if expected else logging.WARNING,
            "leadership lost: %s no longer holds lease %s/%s (%s)",
            self.identity,
            self.namespace,
            self.name,
            why,
            extra={"dyntoolset": self._fields(leader=False, why=why)},
        )
        self._callback(self.on_stopped_leading)

    def _callback(self, callback: Callable[[], None] | None) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:  # a callback must not stop the election
            log.exception("lease %s/%s: leadership callback failed", self.namespace, self.name)

    # -- API calls --------------------------------------------------------------

    def _spec(
        self, now: _dt.datetime, *, acquired: _dt.datetime | None, transitions: int
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, math.ceil(self.timings.lease_duration)),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        }
        if acquired is not None:
            spec["acquireTime"] = _micro_time(acquired)
        return spec

    def _write(self, body: dict[str, Any], started: float, *, create: bool) -> bool:
        try:
            written = self._call("create" if create else "replace", body=body)
        except ApiFailure as failure:
            log.debug(
                "lease %s/%s: %s failed: %s",
                self.namespace,
                self.name,
                "create" if create else "update",
                failure,
            )
            return False
        self._won(started, written)
        return True

    def _read(self) -> dict[str, Any] | None:
        try:
            return self._call("read")
        except ApiFailure as failure:
            if failure.not_found:
                return None
            raise

    def _call(self, verb: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        options: dict[str, Any] = {"_preload_content": False, "_request_timeout": self._timeout}
        try:
            if verb == "read":
                response = self._api.read_namespaced_lease(self.name, self.namespace, **options)
            elif verb == "create":
                response = self._api.create_namespaced_lease(self.namespace, body, **options)
            else:
                response = self._api.replace_namespaced_lease(
                    self.name, self.namespace, body, **options
                )
            document = json.loads(response.data)
        except Exception as exc:  # noqa: BLE001 - classify() turns every failure into an outcome
            raise classify(
                exc,
                verb="get" if verb == "read" else verb.replace("replace", "update"),
                resource="leases",
                namespace=self.namespace,
                name=self.name,
                api_group="coordination.k8s.io",
            ) from None
        if not isinstance(document, dict):
            raise ApiFailure(
                f"{verb} leases/{self.name}: the answer is not a Lease",
                status=0,
                reason="invalid_answer",
                temporary=True,
                error_type="invalid_answer",
            )
        return document
