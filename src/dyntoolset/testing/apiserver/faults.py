"""Scriptable faults and the request log."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from typing import Any

import attrs


@attrs.frozen
class RequestInfo:
    """What the emulator understood of one request (used to match faults)."""

    method: str
    path: str
    query: dict[str, str]
    verb: str | None  # get, list, watch, create, update, patch, delete, deletecollection, proxy
    resource: str | None  # plural, e.g. "configmaps"
    namespace: str | None
    name: str | None


@attrs.frozen
class RequestRecord:
    """One served request, for assertions: what was asked and what was answered."""

    method: str
    path: str
    query: dict[str, str]
    verb: str | None
    resource: str | None
    namespace: str | None
    name: str | None
    status: int
    content_type: str | None = None
    body: Any = None
    fault: str | None = None  # the kind of fault that shaped the answer, if any
    user: str | None = None  # the bearer token's user, when authentication is on


#: The kinds of fault: answer a status, drop the connection, stall, inject 410, add latency.
FAULT_KINDS = ("status", "drop", "stall", "gone", "latency")


@attrs.define(eq=False)
class Fault:
    """One scripted fault and what it matches.

    Matching fields left as None match anything; ``path`` is a regular
    expression searched in the URL path; ``when`` is an extra predicate on
    :class:`RequestInfo`. ``times`` bounds how often it fires (None: always),
    ``probability`` makes each matching request fire with that chance,
    ``skip`` lets the first N matching requests through untouched.
    ``fired`` counts the requests it shaped, ``seen`` the ones it matched.
    """

    kind: str
    method: str | None = None
    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    path: str | None = None
    when: Callable[[RequestInfo], bool] | None = None
    times: int | None = None
    probability: float | None = None
    skip: int = 0
    # what the fault does
    status: int = 500
    reason: str | None = None
    message: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0  # stall duration or latency
    after_events: int | None = None  # watches: how many events go out before the fault
    fired: int = 0
    seen: int = 0
    _owner: FaultSet | None = attrs.field(default=None, repr=False)

    def matches(self, info: RequestInfo) -> bool:
        """Whether the request is one this fault is about (ignoring times and probability)."""
        if self.method is not None and self.method.upper() != info.method:
            return False
        for mine, theirs in (
            (self.verb, info.verb),
            (self.resource, info.resource),
            (self.namespace, info.namespace),
            (self.name, info.name),
        ):
            if mine is not None and mine != theirs:
                return False
        if self.path is not None and not re.search(self.path, info.path):
            return False
        return self.when is None or self.when(info)

    @property
    def exhausted(self) -> bool:
        """True once it has fired ``times`` times."""
        return self.times is not None and self.fired >= self.times

    def remove(self) -> None:
        """Stop this fault from firing again."""
        if self._owner is not None:
            self._owner.remove(self)


class FaultSet:
    """The active faults, in the order they were added."""

    def __init__(self, seed: int | None = 0) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._random = random.Random(seed)

    def add(self, fault: Fault) -> Fault:
        """Activate a fault; returns it (to read ``fired`` or call ``remove()``)."""
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {FAULT_KINDS}")
        fault._owner = self
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        """Deactivate a fault (no error if already gone)."""
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear(self) -> None:
        """Deactivate every fault."""
        with self._lock:
            self._faults.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def select(self, info: RequestInfo) -> tuple[float, Fault | None]:
        """Total latency to add and the first other fault that fires for this request."""
        latency = 0.0
        chosen: Fault | None = None
        with self._lock:
            for fault in self._faults:
                if fault.exhausted or not fault.matches(info):
                    continue
                if fault.kind != "latency" and chosen is not None:
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                if fault.probability is not None and self._random.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.kind == "latency":
                    latency += fault.seconds
                else:
                    chosen = fault
        return latency, chosen
