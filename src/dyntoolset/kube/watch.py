"""List then watch one collection, forever: the loop under the Service cache and the
ConfigMap watch.

:class:`Reflector` owns the outer loop the client's ``Watch.stream`` does not
provide: a paginated list (``limit``/``continue``; a 410 on a continue token
restarts the list), then a watch from the list's resourceVersion with
bookmarks, read as raw JSON lines (``_preload_content=False``: the client's
typed models are never built). A 410 (an in-stream ``ERROR`` or an HTTP
answer) means relist, replacing the whole collection; a stream that ends
cleanly is reopened from the last resourceVersion seen (bookmarks included);
any other failure (HTTP error, dropped connection, read timeout on a silent
server) waits for the :class:`~dyntoolset.kube.errors.Backoff` and reopens
from the last resourceVersion.

What happens to the objects is up to a :class:`Sink`. A ``transform``
(for the Service cache, the slim snapshot) is applied to each listed object
as its page arrives, so a list of 50,000 objects never holds more than one
page of raw JSON; nothing of a list outlives :meth:`Sink.replace`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import attrs

from dyntoolset.gcpause import cycle_collector_paused
from dyntoolset.kube.client import Timeouts
from dyntoolset.kube.errors import ApiFailure, Backoff, classify, from_status

__all__ = ["Collection", "Reflector", "Sink"]

log = logging.getLogger(__name__)

#: Consecutive 410s on continue tokens before the list counts as failed (and backs off).
MAX_LIST_RESTARTS = 3
#: A watch that ends cleanly sooner than this without any event backs off
#: before reopening, so a server that closes every stream at once is no hot loop.
MIN_QUIET_WATCH = 1.0


class Sink(Protocol):
    """Where a :class:`Reflector` delivers what it learns."""

    def replace(self, objects: list[Any]) -> None:
        """A complete list: these objects (as the reflector's ``transform`` made
        them), and no others, exist now."""

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        """A watch event: ``ADDED``, ``MODIFIED`` or ``DELETED`` with the object."""

    def unsynced(self) -> None:
        """What was delivered may be stale (a 410: a relist follows)."""


@attrs.frozen
class Collection:
    """What to list and watch.

    ``call`` is a bound client method (for example
    ``partial(CoreV1Api(c).list_namespaced_service, "monitoring")``) taking
    the list/watch keyword arguments; ``resource``/``namespace`` describe it
    in messages and RBAC hints; ``field_selector`` narrows it.
    """

    call: Callable[..., Any]
    resource: str
    namespace: str | None = None
    field_selector: str | None = None

    @property
    def label(self) -> str:
        """``services in monitoring``, ``services in all namespaces``."""
        where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
        selector = f" ({self.field_selector})" if self.field_selector else ""
        return f"{self.resource}{selector} in {where}"


class Reflector:
    """One list-and-watch loop over ``collection`` into ``sink``; run :meth:`run` in a thread.

    ``stopped`` ends the loop (set it, then call :meth:`interrupt` to cut an
    open stream). ``transform`` (optional) turns each listed object into
    what :meth:`Sink.replace` receives, page by page; watch events are
    delivered as raw JSON. Counters for tests and statistics: ``lists``
    (complete lists), ``watches`` (streams opened), ``failures``.
    """

    def __init__(
        self,
        collection: Collection,
        sink: Sink,
        *,
        stopped: threading.Event,
        timeouts: Timeouts | None = None,
        page_size: int = 500,
        backoff: Backoff | None = None,
        transform: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.collection = collection
        self.transform = transform
        self.sink = sink
        self.stopped = stopped
        self.timeouts = timeouts or Timeouts()
        self.page_size = page_size
        self.backoff = backoff or Backoff()
        self.resource_version: str | None = None
        self.lists = 0
        self.watches = 0
        self.failures = 0
        self.last_failure: ApiFailure | None = None
        self._response: Any = None
        self._lock = threading.Lock()

    # -- the loop ---------------------------------------------------------------

    def run(self) -> None:
        """List, then watch, until ``stopped`` is set."""
        while not self.stopped.is_set():
            try:
                if self.resource_version is None and not self._relist():
                    return
                self._watch_once()
            except ApiFailure as failure:
                if self.stopped.is_set():
                    return
                if failure.gone:
                    log.info("%s: %s; listing again", self.collection.label, failure.message)
                    self.resource_version = None
                    self.sink.unsynced()
                    continue
                self._wait_after(failure)
            except Exception:  # a bug in a sink must not end the watch for good
                log.exception("%s: unexpected error; backing off", self.collection.label)
                self._wait_after(None)

    def _relist(self) -> bool:
        """List and hand over the whole collection; ``False`` when stopped meanwhile.

        A method of its own so the list is gone when it returns: kept in
        :meth:`run`'s frame, it would stay alive through the whole watch.
        """
        objects, version = self._list()
        if self.stopped.is_set():
            return False
        self.sink.replace(objects)
        self.resource_version = version
        self.lists += 1
        self.backoff.healthy()
        return True

    def interrupt(self) -> None:
        """Cut the open watch stream (if any), so :meth:`run` notices ``stopped`` at once."""
        with self._lock:
            response = self._response
        if response is not None:
            try:
                response.shutdown()
            except Exception:
                log.debug("shutting down a watch stream failed", exc_info=True)

    def _wait_after(self, failure: ApiFailure | None) -> None:
        self.failures += 1
        self.last_failure = failure
        delay = self.backoff.delay(failure.retry_after if failure else None)
        if failure is not None:
            level = logging.WARNING if failure.temporary else logging.ERROR
            log.log(level, "%s: %s; retrying in %.1fs", self.collection.label, failure, delay)
        self.stopped.wait(delay)

    # -- list -------------------------------------------------------------------

    def _request(self, verb: str, **kwargs: Any) -> Any:
        c = self.collection
        if c.field_selector:
            kwargs["field_selector"] = c.field_selector
        try:
            return c.call(_preload_content=False, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every client failure is classified
            raise classify(exc, verb=verb, resource=c.resource, namespace=c.namespace) from None

    def _list(self) -> tuple[list[Any], str]:
        """Every object (transformed), page by page, and the list's resourceVersion."""
        restarts = 0
        transform = self.transform
        while True:
            objects: list[Any] = []
            token: str | None = None
            try:
                while True:
                    body = self._list_page(token)
                    # The collector would walk the page's thousands of fresh
                    # containers and free none (see dyntoolset.gcpause); the
                    # pause ends with the page, so it never spans a network wait.
                    with cycle_collector_paused():
                        page = self._decode_page(body)
                        del body
                        items = [i for i in page.get("items") or () if isinstance(i, dict)]
                        # Transformed now, the page's raw JSON goes before the next page.
                        objects.extend(map(transform, items) if transform else items)
                        meta = page.get("metadata") or {}
                        del page, items
                    token = meta.get("continue") or None
                    if token is None:
                        return objects, str(meta.get("resourceVersion") or "0")
            except ApiFailure as failure:
                if not (failure.gone and token is not None) or restarts >= MAX_LIST_RESTARTS:
                    raise
                restarts += 1
                log.info(
                    "%s: continue token expired; listing from the start", self.collection.label
                )

    def _list_page(self, token: str | None) -> bytes:
        """The raw answer to one list request (a page)."""
        kwargs: dict[str, Any] = {"limit": self.page_size, "_request_timeout": self.timeouts.call}
        if token:
            kwargs["_continue"] = token
        response = self._request("list", **kwargs)
        try:
            body = response.data
        except Exception as exc:  # noqa: BLE001 - every client failure is classified
            raise classify(exc, verb="list", resource=self.collection.resource) from None
        finally:
            response.release_conn()
        return body  # type: ignore[no-any-return]

    def _decode_page(self, body: bytes) -> dict[str, Any]:
        """One page's JSON, or an :class:`ApiFailure` saying why not."""
        try:
            page = json.loads(body)
        except ValueError as exc:
            raise ApiFailure(
                f"list {self.collection.label}: the answer is not JSON: {exc}",
                status=0,
                reason="InvalidResponse",
                temporary=True,
                error_type="invalid_response",
            ) from None
        if not isinstance(page, dict):
            raise ApiFailure(
                f"list {self.collection.label}: the answer is not a JSON object",
                status=0,
                reason="InvalidResponse",
                temporary=True,
                error_type="invalid_response",
            )
        return page

    # -- watch ------------------------------------------------------------------

    def _watch_once(self) -> None:
        """One watch stream from :attr:`resource_version`, until it ends or fails."""
        opened = time.monotonic()
        response = self._request(
            "watch",
            watch=True,
            resource_version=self.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.timeouts.watch_seconds,
            _request_timeout=self.timeouts.watch,
        )
        with self._lock:
            self._response = response
        self.watches += 1
        self.backoff.healthy()
        events = 0
        try:
            for line in _lines(response):
                if self.stopped.is_set():
                    return
                self._handle(line)
                events += 1
        except ApiFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - every client failure is classified
            if self.stopped.is_set():
                return
            raise classify(exc, verb="watch", resource=self.collection.resource) from None
        finally:
            with self._lock:
                self._response = None
            response.release_conn()
        if not events and time.monotonic() - opened < MIN_QUIET_WATCH:
            self.stopped.wait(self.backoff.delay())

    def _handle(self, line: bytes) -> None:
        c = self.collection
        try:
            event = json.loads(line)
            kind = event["type"]
            obj = event["object"]
        except (ValueError, KeyError, TypeError):
            log.warning("%s: skipping a watch line that is not an event", c.label)
            return
        if not isinstance(obj, dict):
            return
        if kind == "ERROR":
            raise from_status(
                int(obj.get("code") or 500),
                obj,
                verb="watch",
                resource=c.resource,
                namespace=c.namespace,
            )
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self.sink.event(kind, obj)
        if version:
            self.resource_version = str(version)


def _lines(response: Any) -> Iterator[bytes]:
    """The newline-delimited JSON lines of a watch answer, as they arrive."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=True):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    if pending.strip():
        yield pending
