"""The output ConfigMap: read it, write it, and watch it for edits and deletion.

:class:`ConfigMapStore` reads the object as raw JSON and writes the whole
object back: a *create* only when the read said 404, otherwise a *replace*
carrying the resourceVersion that was read, so a concurrent edit is a 409
rather than lost. Both kinds of 409 (``Conflict`` on replace,
``AlreadyExists`` on create) are raised as
:class:`~dyntoolset.kube.errors.ApiFailure` with ``conflict`` set: the
reconciler then re-reads, re-merges and tries again, so nothing another
writer put there is overwritten.

Why replace rather than server-side apply: the merge
(:func:`dyntoolset.configmap.merge_configmap`) must see the operator's
``overrides.yaml`` and detect drift on the current object anyway, so it
already holds the whole object; a replace guarded by the resourceVersion
keeps every foreign key, label and annotation byte for byte without relying
on field ownership (which a ``kubectl edit`` of a generated key would take
over, turning drift into an apply conflict).

:class:`ConfigMapWatch` watches that one ConfigMap (``fieldSelector=
metadata.name=…``) and calls back on every change, so a deleted or edited
ConfigMap is repaired within one reconcile rather than at the next resync.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from dyntoolset.kube.client import Timeouts, controller_client
from dyntoolset.kube.errors import ApiFailure, Backoff, classify
from dyntoolset.kube.watch import Collection, Reflector

__all__ = ["ConfigMapStore", "ConfigMapWatch"]

log = logging.getLogger(__name__)

#: Server-owned metadata a write must not send back (a create with a
#: resourceVersion is refused; managedFields are kept by the server when omitted).
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation")


class ConfigMapStore:
    """Reads and writes one ConfigMap (``namespace``/``name``); see the module docstring."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        name: str,
        *,
        timeouts: Timeouts | None = None,
    ) -> None:
        from kubernetes import client

        self.namespace = namespace
        self.name = name
        self.timeouts = timeouts or Timeouts()
        self._client = controller_client(api_client)
        self._core: Any = client.CoreV1Api(self._client)  # raw dict bodies, not models

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def read(self) -> dict[str, Any] | None:
        """The ConfigMap as raw JSON, or ``None`` when it does not exist (404 only)."""
        try:
            response = self._core.read_namespaced_config_map(
                self.name,
                self.namespace,
                _preload_content=False,
                _request_timeout=self.timeouts.call,
            )
            return self._json(response, "get")
        except ApiFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - every client failure is classified
            failure = self._failure(exc, "get")
            if failure.not_found:
                return None
            raise failure from None

    def write(self, configmap: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        """Create ``configmap`` (``existing`` is ``None``) or replace ``existing`` with it.

        The replace carries ``existing``'s resourceVersion. Returns the
        stored object; raises :class:`ApiFailure` (``conflict`` for a 409 of
        either kind).
        """
        body = copy.deepcopy(configmap)
        metadata = body.setdefault("metadata", {})
        for field in _SERVER_FIELDS:
            metadata.pop(field, None)
        metadata["name"], metadata["namespace"] = self.name, self.namespace
        verb = "create" if existing is None else "update"
        try:
            if existing is None:
                response = self._core.create_namespaced_config_map(
                    self.namespace,
                    body,
                    _preload_content=False,
                    _request_timeout=self.timeouts.call,
                )
            else:
                version = (existing.get("metadata") or {}).get("resourceVersion")
                if version:
                    metadata["resourceVersion"] = version
                response = self._core.replace_namespaced_config_map(
                    self.name,
                    self.namespace,
                    body,
                    _preload_content=False,
                    _request_timeout=self.timeouts.call,
                )
            return self._json(response, verb)
        except ApiFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - every client failure is classified
            raise self._failure(exc, verb) from None

    def _failure(self, exc: BaseException, verb: str) -> ApiFailure:
        return classify(
            exc,
            verb=verb,
            resource="configmaps",
            namespace=self.namespace,
            name=None if verb == "create" else self.name,
        )

    def _json(self, response: Any, verb: str) -> dict[str, Any]:
        try:
            document = json.loads(response.data)
        except ValueError as exc:
            raise ApiFailure(
                f"{verb} configmaps/{self.name}: the answer is not JSON: {exc}",
                status=0,
                reason="InvalidResponse",
                temporary=True,
                error_type="invalid_response",
            ) from None
        finally:
            response.release_conn()
        if not isinstance(document, dict):
            raise ApiFailure(
                f"{verb} configmaps/{self.name}: the answer is not a JSON object",
                status=0,
                reason="InvalidResponse",
                temporary=True,
                error_type="invalid_response",
            )
        return document


class _Events:
    """Turns what the reflector sees of the ConfigMap into ``callback(reason, object)``."""

    def __init__(self, callback: Callable[[str, dict[str, Any] | None], None]) -> None:
        self.callback = callback

    def _call(self, reason: str, obj: dict[str, Any] | None) -> None:
        try:
            self.callback(reason, obj)
        except Exception:
            log.exception("a ConfigMap watch callback failed")

    def replace(self, objects: list[dict[str, Any]]) -> None:
        self._call("configmap-listed", objects[0] if objects else None)

    def event(self, kind: str, obj: dict[str, Any]) -> None:
        self._call("configmap-deleted" if kind == "DELETED" else "configmap-changed", obj)

    def unsynced(self) -> None:
        return None


class ConfigMapWatch:
    """Watch one ConfigMap; call ``callback(reason, obj)`` on each list and change.

    ``reason`` is ``configmap-listed`` (``obj`` is the object or ``None``),
    ``configmap-changed`` or ``configmap-deleted``. Runs in a thread of its own.
    """

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        name: str,
        callback: Callable[[str, dict[str, Any] | None], None],
        *,
        timeouts: Timeouts | None = None,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self._api_client = api_client
        self.namespace = namespace
        self.name = name
        self._callback = callback
        self.timeouts = timeouts or Timeouts()
        self._backoff = backoff
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self.reflector: Reflector | None = None

    def start(self) -> None:
        """Start watching in a background thread."""
        from kubernetes import client

        self._client = controller_client(self._api_client)
        core = client.CoreV1Api(self._client)
        collection = Collection(
            functools.partial(core.list_namespaced_config_map, self.namespace),
            "configmaps",
            self.namespace,
            field_selector=f"metadata.name={self.name}",
        )
        self.reflector = Reflector(
            collection,
            _Events(self._callback),
            stopped=self._stopped,
            timeouts=self.timeouts,
            backoff=self._backoff(),
        )
        self._thread = threading.Thread(
            target=self.reflector.run, name=f"dyntoolset-watch-configmap-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop watching and wait for the thread."""
        self._stopped.set()
        if self.reflector is not None:
            self.reflector.interrupt()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._client is not None:
            self._client.close()
            self._client = None
