"""The Service cache: every Service the configuration can match, as slim snapshots.

:class:`ServiceCache` runs one :class:`~dyntoolset.kube.watch.Reflector`
per scope (all namespaces, or one per namespace when
:func:`namespace_scope` finds that the configuration can only match a
finite set of namespaces) and keeps what they deliver as
:class:`~dyntoolset.model.Service` snapshots built straight from the raw
JSON. It is *synced* once every scope has completed a list, and stops being
synced while a relist after a 410 is incomplete: unknown is not empty, and
the reconciler writes nothing from an unsynced cache.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from dyntoolset.config import Config
from dyntoolset.kube.client import Timeouts, controller_client
from dyntoolset.kube.errors import Backoff
from dyntoolset.kube.watch import Collection, Reflector
from dyntoolset.model import Service
from dyntoolset.snapshot import SnapshotError, service_from_object

__all__ = ["ServiceCache", "namespace_scope"]

log = logging.getLogger(__name__)

Key = str  # namespace/name, as Service.key and discovery's results have it


def namespace_scope(config: Config) -> tuple[str, ...] | None:
    """The namespaces to watch, sorted, or ``None`` for all namespaces.

    A finite scope exists only when *every* enabled detector's
    ``namespaces`` filter is a finite list of literal names (see
    :meth:`~dyntoolset.matching.NamespaceFilter.literal_namespaces`); the
    scope is their union. One detector that may look anywhere means all
    namespaces.
    """
    names: set[str] = set()
    enabled = config.enabled_detectors()
    if not enabled:
        return None
    for detector in enabled:
        literal = detector.namespaces.literal_namespaces()
        if literal is None:
            return None
        names |= literal
    return tuple(sorted(names))


class _Partition:
    """The Services one reflector is responsible for (a :class:`~dyntoolset.kube.watch.Sink`)."""

    def __init__(self, cache: ServiceCache, label: str) -> None:
        self.cache = cache
        self.label = label
        self.services: dict[Key, Service] = {}
        self.synced = False

    def replace(self, objects: list[Service | None]) -> None:
        # Snapshots already (the reflector's transform); None: left out, logged.
        fresh: dict[Key, Service] = {
            service.key: service for service in objects if service is not None
        }
        with self.cache._lock:
            vanished = len(self.services.keys() - fresh.keys())
            self.services = fresh
            first = not self.synced
            self.synced = True
            all_synced = self.cache._all_synced()
            if all_synced:
                self.cache._synced_event.set()
        log.info(
            "%s listed: %d Services%s",
            self.label,
            len(fresh),
            f", {vanished} vanished" if vanished else "",
        )
        self.cache._notify("synced" if first and all_synced else "relist")

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"
        service = None if kind == "DELETED" else self.cache._snapshot(obj)
        with self.cache._lock:
            old = self.services.get(key)
            if service is None:
                if old is None:
                    return
                del self.services[key]
            else:
                if old is not None and attrs.evolve(old, resource_version="") == attrs.evolve(
                    service, resource_version=""
                ):
                    self.services[key] = service
                    return  # status-only change: nothing a detector can see
                self.services[key] = service
        self.cache._notify("service")

    def unsynced(self) -> None:
        with self.cache._lock:
            self.synced = False
            self.cache._synced_event.clear()
        log.info("%s: cache out of date until the relist completes", self.label)


class ServiceCache:
    """Watched Services as snapshots; see the module docstring.

    ``api_client`` is a ``kubernetes.client.ApiClient`` (its host and
    credentials are reused by a client of the cache's own, with urllib3
    retries off and TCP keepalive on). ``namespaces`` limits the cache to
    those namespaces, one list/watch each (``None``: all namespaces; see
    :func:`namespace_scope`). Callbacks registered with :meth:`on_change`
    are called from the watch threads with a reason (``"service"``,
    ``"relist"`` or ``"synced"``) and must return quickly.
    """

    def __init__(
        self,
        api_client: Any,
        *,
        namespaces: Iterable[str] | None = None,
        timeouts: Timeouts | None = None,
        page_size: int = 500,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self._api_client = api_client
        self.namespaces = None if namespaces is None else tuple(sorted(set(namespaces)))
        self.timeouts = timeouts or Timeouts()
        self.page_size = page_size
        self._backoff = backoff
        self._lock = threading.Lock()
        self._synced_event = threading.Event()
        self._stopped = threading.Event()
        self._callbacks: list[Callable[[str], None]] = []
        self._partitions: list[_Partition] = []
        self._invalid: dict[Key, str] = {}
        self.reflectors: list[Reflector] = []
        self._threads: list[threading.Thread] = []
        self._client: Any = None

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """Start listing and watching in background threads (returns at once)."""
        if self._threads:
            raise RuntimeError("ServiceCache already started")
        from kubernetes import client

        self._client = controller_client(self._api_client)
        core = client.CoreV1Api(self._client)
        scopes: list[Collection] = []
        if self.namespaces is None:
            scopes.append(Collection(core.list_service_for_all_namespaces, "services"))
        else:
            scopes += [
                Collection(functools.partial(core.list_namespaced_service, ns), "services", ns)
                for ns in self.namespaces
            ]
        for scope in scopes:
            partition = _Partition(self, scope.label)
            reflector = Reflector(
                scope,
                partition,
                stopped=self._stopped,
                timeouts=self.timeouts,
                page_size=self.page_size,
                backoff=self._backoff(),
                transform=self._snapshot,
            )
            self._partitions.append(partition)
            self.reflectors.append(reflector)
            thread = threading.Thread(
                target=reflector.run, name=f"dyntoolset-watch-{scope.label}", daemon=True
            )
            self._threads.append(thread)
        log.info(
            "watching Services in %s",
            ", ".join(self.namespaces) if self.namespaces is not None else "all namespaces",
        )
        if not scopes:
            # Every detector's namespaces filter excludes every name it lists: nothing
            # can match, and that is known (not unknown), so the empty cache is synced.
            log.warning("the configuration can match no namespace: no Service is watched")
            self._synced_event.set()
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop every watch and wait (up to ``timeout`` per thread) for the threads."""
        self._stopped.set()
        for reflector in self.reflectors:
            reflector.interrupt()
        for thread in self._threads:
            thread.join(timeout)
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- state ----------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """True when every scope has completed its latest list (and none is relisting)."""
        return self._synced_event.is_set()

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Block until synced (or ``timeout`` seconds); returns :attr:`synced`."""
        return self._synced_event.wait(timeout)

    def services(self) -> list[Service]:
        """A snapshot of the cached Services, sorted by namespace and name."""
        with self._lock:
            merged = [s for p in self._partitions for s in p.services.values()]
        return sorted(merged, key=lambda s: (s.namespace, s.name))

    def by_key(self) -> dict[str, Service]:
        """The cached Services by namespace/name, in no particular order.

        What each reconcile hands to discovery: a mapping discovery takes as
        already de-duplicated, merged at C speed, where :meth:`services`
        sorts and discovery would build every key again (issue 15).
        """
        merged: dict[str, Service] = {}
        with self._lock:
            for partition in self._partitions:
                merged.update(partition.services)
        return merged

    @property
    def size(self) -> int:
        """How many Services are cached."""
        with self._lock:
            return sum(len(p.services) for p in self._partitions)

    @property
    def relists(self) -> int:
        """Complete lists so far, over every scope (the first ones included)."""
        return sum(r.lists for r in self.reflectors)

    def on_change(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` after each change, each relist, and on sync."""
        with self._lock:
            self._callbacks.append(callback)

    # -- used by the partitions -------------------------------------------------------

    def _all_synced(self) -> bool:
        return all(p.synced for p in self._partitions)

    def _notify(self, reason: str) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(reason)
            except Exception:
                log.exception("a Service cache callback failed")

    def _snapshot(self, obj: dict[str, Any]) -> Service | None:
        """The snapshot of ``obj``, or ``None`` (logged once per Service and problem)."""
        try:
            service = service_from_object(obj)
        except SnapshotError as exc:
            raw_meta = obj.get("metadata")
            meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
            key = f"{meta.get('namespace') or 'default'}/{meta.get('name') or '?'}"
            reason = str(exc)
            with self._lock:
                seen = self._invalid.get(key) == reason
                self._invalid[key] = reason
            log.log(
                logging.DEBUG if seen else logging.WARNING,
                "Service %s left out: %s",
                key,
                reason,
            )
            return None
        key = service.key
        if key in self._invalid:
            with self._lock:
                self._invalid.pop(key, None)
        return service
