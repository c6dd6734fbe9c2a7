"""Object storage with one global resourceVersion and a bounded event history.

Every write takes the next resourceVersion and appends an event to the
history; watches read the history from their cursor, and paginated lists are
served from a snapshot rebuilt by undoing newer events. Events older than the
retained window are gone, and asking for them is 410 Expired, as it is when
etcd has compacted past a version.
"""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import attrs

from dyntoolset.testing.apiserver.resources import (
    ApiError,
    ResourceType,
    already_exists,
    conflict,
    gone,
    not_found,
)

Key = tuple[str, str]  # (namespace or "", name)
#: Listings (see Store.listing) kept at once: enough for a few lists in flight.
_LISTINGS_KEPT = 4


_T = TypeVar("_T")
_SCALARS = frozenset({str, int, float, bool, type(None)})


def json_copy(value: _T) -> _T:
    """A deep copy of a JSON tree (dicts, lists, scalars).

    The store copies every object on the way in and out; stored objects are
    JSON trees, which this copies about three times as fast as
    :func:`copy.deepcopy` (no memo, no dispatch): seeding 50,000 Services
    for the benchmarks spent half its time in ``deepcopy``. Anything else
    falls back to :func:`copy.deepcopy`.
    """
    return cast(_T, _copy(value))


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _copy(item) for key, item in value.items()}
    if kind is list:
        return [_copy(item) for item in value]
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)


def metadata_of(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj["metadata"]``, made an empty dict when missing or null (as Go decodes null)."""
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    result: dict[str, Any] = meta
    return result


def object_key(obj: dict[str, Any]) -> Key:
    """``(namespace, name)`` of an object ('' namespace for cluster-scoped ones)."""
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


@attrs.frozen
class Event:
    """One change: the object after it (for DELETED, its last state) and before it."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: str  # plural
    key: Key
    obj: dict[str, Any]
    prev: dict[str, Any] | None


class Store:
    """Thread-safe objects of every resource, sharing one resourceVersion counter."""

    def __init__(self, history_limit: int = 1000, start_resource_version: int = 100) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.history_limit = history_limit
        self._rv = start_resource_version
        self._compacted = start_resource_version
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {}
        self._history: list[Event] = []
        self._history_rvs: list[int] = []
        # Bumped by every change of the objects (preloads included, which take
        # no resourceVersion): the key of the listing cache below.
        self._writes = 0
        self._listings: dict[tuple[str, int, int], tuple[dict[Key, Any], list[Key]]] = {}
        #: bumped by :meth:`expire_watches`; running watches compare it to end with 410
        self.expire_generation = 0
        #: bumped by :meth:`request_bookmarks`; running watches send a bookmark
        self.bookmark_generation = 0
        self.closed = False

    @property
    def resource_version(self) -> int:
        """The current (latest) global resourceVersion."""
        with self.cond:
            return self._rv

    @property
    def compacted_resource_version(self) -> int:
        """Versions older than this are no longer in the history (410 when asked for)."""
        with self.cond:
            return self._compacted

    # --- reads ---------------------------------------------------------------------------

    def get(self, res: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of one object, or None."""
        with self.cond:
            obj = self._objects.get(res.plural, {}).get((namespace, name))
            return json_copy(obj) if obj is not None else None

    def items(self, res: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of the objects of a resource (optionally one namespace), sorted by key."""
        with self.cond:
            objs = self._objects.get(res.plural, {})
            return [
                json_copy(objs[key])
                for key in sorted(objs)
                if namespace is None or key[0] == namespace
            ]

    def snapshot(self, res: ResourceType, rv: int) -> dict[Key, dict[str, Any]]:
        """The objects of a resource as they were at resourceVersion ``rv`` (not copied).

        Raises:
            ApiError: 410 when ``rv`` is older than the retained history.
        """
        with self.cond:
            if rv < self._compacted:
                raise gone(f"too old resource version: {rv} ({self._compacted})")
            state = dict(self._objects.get(res.plural, {}))
            start = bisect.bisect_right(self._history_rvs, rv)
            for event in reversed(self._history[start:]):
                if event.resource != res.plural:
                    continue
                if event.type == "ADDED":
                    state.pop(event.key, None)
                elif event.prev is not None:
                    state[event.key] = event.prev
            return state

    def listing(self, res: ResourceType, rv: int) -> tuple[dict[Key, dict[str, Any]], list[Key]]:
        """:meth:`snapshot` at ``rv`` and its keys sorted: what a paginated list pages through.

        Kept for the last few (resource, version) pairs while nothing is
        written, so the pages of one list share one snapshot and one sort
        instead of each copying and sorting every object again (a 50,000-
        Service list in 500-item pages spent 40 s doing that). Neither may be
        changed by the caller.

        Raises:
            ApiError: 410 when ``rv`` is older than the retained history.
        """
        with self.cond:
            if rv < self._compacted:
                raise gone(f"too old resource version: {rv} ({self._compacted})")
            key = (res.plural, rv, self._writes)
            listing = self._listings.get(key)
            if listing is None:
                state = self.snapshot(res, rv)
                listing = (state, sorted(state))
                if len(self._listings) >= _LISTINGS_KEPT:
                    self._listings.clear()
                self._listings[key] = listing
            return listing

    def events_after(self, rv: int) -> list[Event]:
        """Events newer than ``rv``, oldest first.

        Raises:
            ApiError: 410 when events after ``rv`` have already been dropped.
        """
        with self.cond:
            if rv < self._compacted:
                raise gone(f"too old resource version: {rv} ({self._compacted})")
            start = bisect.bisect_right(self._history_rvs, rv)
            return self._history[start:]

    # --- writes --------------------------------------------------------------------------

    def preload(self, res: ResourceType, objs: list[dict[str, Any]]) -> None:
        """Objects that exist from the start, as if written before the retained history.

        They take resourceVersions 1, 2, ... (below the starting version) and
        make no events, so the first write is still ``start_resource_version + 1``.
        """
        with self.cond:
            stored = self._objects.setdefault(res.plural, {})
            for index, obj in enumerate(objs, start=1):
                if index >= self._compacted:
                    raise ValueError("too many preloaded objects for the starting version")
                obj = json_copy(obj)
                metadata_of(obj)["resourceVersion"] = str(index)
                stored[object_key(obj)] = obj
            self._writes += 1

    def _record(
        self,
        res: ResourceType,
        etype: str,
        key: Key,
        obj: dict[str, Any],
        prev: dict[str, Any] | None,
    ) -> None:
        event = Event(
            self._rv,
            etype,
            res.plural,
            key,
            json_copy(obj),
            json_copy(prev) if prev is not None else None,
        )
        self._writes += 1
        self._history.append(event)
        self._history_rvs.append(event.rv)
        excess = len(self._history) - self.history_limit
        if excess > 0:
            self._compacted = self._history[excess - 1].rv
            del self._history[:excess]
            del self._history_rvs[:excess]
        self.cond.notify_all()

    def _next_rv(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        metadata_of(obj)["resourceVersion"] = str(self._rv)

    def create(self, res: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object; returns the stored copy with its resourceVersion.

        Raises:
            ApiError: 409 AlreadyExists.
        """
        obj = json_copy(obj)
        key = object_key(obj)
        with self.cond:
            objs = self._objects.setdefault(res.plural, {})
            if key in objs:
                raise already_exists(res, key[1])
            self._next_rv(obj)
            objs[key] = obj
            self._record(res, "ADDED", key, obj, None)
            return json_copy(obj)

    def update(
        self,
        res: ResourceType,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        expect_rv: str | None = None,
    ) -> dict[str, Any]:
        """Replace an object with ``change(copy of current)``, atomically.

        A result equal to the current object is a no-op: no new resourceVersion,
        no event (as the API server skips writes that change nothing).

        Raises:
            ApiError: 404 when missing; 409 Conflict when ``expect_rv`` (or the
                resourceVersion in the result) is not the current one; whatever
                ``change`` raises.
        """
        with self.cond:
            objs = self._objects.setdefault(res.plural, {})
            current = objs.get((namespace, name))
            if current is None:
                raise not_found(res, name)
            current_rv = current["metadata"]["resourceVersion"]
            if expect_rv and expect_rv != current_rv:
                raise conflict(res, name)
            new = change(json_copy(current))
            new_rv = (new.get("metadata") or {}).get("resourceVersion")
            if new_rv and new_rv != current_rv:
                raise conflict(res, name)
            metadata_of(new)["resourceVersion"] = current_rv
            if new == current:
                return json_copy(current)
            self._next_rv(new)
            objs[(namespace, name)] = new
            self._record(res, "MODIFIED", (namespace, name), new, current)
            return json_copy(new)

    def delete(
        self,
        res: ResourceType,
        namespace: str,
        name: str,
        expect_rv: str | None = None,
        expect_uid: str | None = None,
    ) -> dict[str, Any]:
        """Remove an object; returns its last state (with the deletion's resourceVersion).

        Raises:
            ApiError: 404 when missing; 409 Conflict when a precondition fails.
        """
        with self.cond:
            objs = self._objects.setdefault(res.plural, {})
            current = objs.get((namespace, name))
            if current is None:
                raise not_found(res, name)
            meta = current["metadata"]
            if expect_rv and expect_rv != meta.get("resourceVersion"):
                raise conflict(res, name)
            if expect_uid and expect_uid != meta.get("uid"):
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {res.plural} "{name}": Precondition '
                    f"failed: UID in precondition: {expect_uid}, UID in object meta: "
                    f"{meta.get('uid')}",
                    {"name": name, "kind": res.plural},
                )
            del objs[(namespace, name)]
            last = json_copy(current)
            self._next_rv(last)
            self._record(res, "DELETED", (namespace, name), last, current)
            return last

    # --- history control -----------------------------------------------------------------

    def compact(self) -> int:
        """Forget the whole event history; returns the version now required as a minimum."""
        with self.cond:
            self._history.clear()
            self._history_rvs.clear()
            self._compacted = self._rv
            self.cond.notify_all()
            return self._compacted

    def expire_watches(self) -> None:
        """Make every running watch end with an in-stream ERROR 410 Expired."""
        with self.cond:
            self.expire_generation += 1
            self.cond.notify_all()

    def request_bookmarks(self) -> None:
        """Make every running watch that allows bookmarks send one now."""
        with self.cond:
            self.bookmark_generation += 1
            self.cond.notify_all()

    def close(self) -> None:
        """Wake and end every waiting watch (server shutdown)."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
