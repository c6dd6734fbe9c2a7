"""The emulator object: server lifecycle, direct object access, faults, auth, client setup."""

from __future__ import annotations

import collections
import contextlib
import copy
import ipaddress
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from dyntoolset.testing.apiserver import fields, objects, openapi, typecheck, validation
from dyntoolset.testing.apiserver.access import AccessRule
from dyntoolset.testing.apiserver.faults import Fault, FaultSet, RequestRecord
from dyntoolset.testing.apiserver.handler import Handler
from dyntoolset.testing.apiserver.identity import TokenUser
from dyntoolset.testing.apiserver.resources import (
    RESOURCES,
    ApiError,
    ResourceType,
    bad_request,
    conflict,
    not_found,
    resolve,
    resource_for_object,
)
from dyntoolset.testing.apiserver.store import Store, metadata_of

#: What an access policy may answer: allowed or not, optionally with a reason.
AccessDecision = bool | tuple[bool, str]
#: Decides a SubjectAccessReview from its ``spec`` (a dict, as sent).
AccessPolicy = Callable[[dict[str, Any]], AccessDecision]

_MATCH_FIELDS = (
    "method",
    "verb",
    "resource",
    "namespace",
    "name",
    "path",
    "when",
    "times",
    "probability",
    "skip",
)


NAMESPACES = resolve("namespaces")
#: The namespaces every cluster starts with.
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
#: The namespaces the real server refuses to delete (NamespaceLifecycle admission).
IMMORTAL_NAMESPACES = frozenset({"default", "kube-public", "kube-system"})

#: Where clients reach a server bound to a wildcard address.
_WILDCARD_CLIENT_HOST = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback IP address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog of 5 drops the SYNs of a burst of
    # new connections (a health-check round, parallel workers); each costs the
    # client a 1 s retransmission. The kernel caps this at net.core.somaxconn.
    request_queue_size = 1024
    emulator: ApiServer

    def __init__(self, address: tuple[str, int], emulator: ApiServer) -> None:
        self.emulator = emulator
        # Read by socketserver when it creates the socket: IPv6 for IPv6 literals.
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.open_sockets: set[socket.socket] = set()
        #: Connections the service proxy opened to backends (cut on stop).
        self.backend_sockets: set[socket.socket] = set()
        #: Threads serving connections (joined on stop; daemon threads are not
        #: tracked by socketserver itself).
        self.threads: set[threading.Thread] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"apiserver-emulator:{self.server_address[1]}:{client_address[1]}",
            daemon=True,
        )
        with self.sockets_lock:
            self.open_sockets.add(request)
            self.threads = {t for t in self.threads if t.is_alive()}
            self.threads.add(thread)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up are normal here; keep other errors for the test to see."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError) or self.emulator.stopping.is_set():
            return
        self.emulator.server_errors.append(traceback.format_exc())
        super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)


class ApiServer:
    """A Kubernetes API server emulator on a loopback port, for tests and local runs.

    Use it as a context manager (or the ``apiserver`` pytest fixture)::

        with ApiServer() as api:
            api.create({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "x", "namespace": "default"}})
            v1 = kubernetes.client.CoreV1Api(api.api_client)
            v1.read_namespaced_config_map("x", "default")

    Args:
        host: the address to bind: a loopback address (``127.0.0.1``, ``::1``,
            ``localhost``) unless ``allow_non_loopback`` is set.
        port: 0 picks a free port.
        history_limit: how many events the watch history keeps; watches and
            continue tokens older than that get 410 Expired.
        bookmark_interval: seconds between BOOKMARK events on watches that allow them.
        watch_timeout: how long a watch without ``timeoutSeconds`` lasts.
        tokens: token → user name (or :class:`TokenUser`, to give it a uid and
            groups); when non-empty every request needs one of these bearer
            tokens (401 otherwise). Without tokens, requests are anonymous
            (``system:anonymous``).
        kubeconfig: where to write the kubeconfig (default: a temporary file).
        seed: seed of the random numbers used by probabilistic faults.
        proxy_timeout: seconds the service proxy waits for a backend.
        allow_non_loopback: allow ``host`` to be another interface or the
            wildcard (``0.0.0.0``, ``::``). The emulator speaks plain HTTP and,
            without ``tokens``, authenticates nobody, so this is refused by default.

    Raises:
        ValueError: ``host`` is not a loopback address and ``allow_non_loopback``
            is not set, or ``port`` is not in 0..65535.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        history_limit: int = 1000,
        bookmark_interval: float = 1.0,
        watch_timeout: float = 1800.0,
        tokens: Mapping[str, str | TokenUser] | None = None,
        kubeconfig: str | os.PathLike[str] | None = None,
        seed: int | None = 0,
        proxy_timeout: float = 5.0,
        allow_non_loopback: bool = False,
    ) -> None:
        if not allow_non_loopback and not is_loopback(host):
            raise ValueError(
                f"{host!r} is not a loopback address: the emulator speaks plain HTTP and "
                "authenticates nobody unless tokens are set, so it serves other interfaces "
                "only with allow_non_loopback=True (--allow-non-loopback)"
            )
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is not in 0..65535")
        self.host = host
        self._requested_port = port
        self.store = Store(history_limit=history_limit)
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout
        self.proxy_timeout = proxy_timeout
        #: token → user name; non-empty means callers must authenticate
        self.tokens: dict[str, str | TokenUser] = dict(tokens or {})
        #: token → identity answered by TokenReview
        self.token_reviews: dict[str, TokenUser] = {}
        #: decides SubjectAccessReviews; None: :attr:`access_rules` decide
        self.access_policy: AccessPolicy | None = None
        #: ``(allowed, rule)`` pairs from :meth:`allow` and :meth:`deny`; a deny wins
        self.access_rules: list[tuple[bool, AccessRule]] = []
        #: the active faults
        self.faults = FaultSet(seed)
        #: set while the server stops; stalls and latency wait on it
        self.stopping = threading.Event()
        #: the body of ``/version``
        self.version_info: dict[str, str] = {
            "major": "1",
            "minor": "31",
            "gitVersion": "v1.31.0-dyntoolset-emulator",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.22.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
        #: tracebacks of unexpected errors in request handling (should stay empty)
        self.server_errors: list[str] = []
        self._allocator = objects.ClusterIPAllocator()
        self.store.preload(
            NAMESPACES,
            [
                objects.prepare(NAMESPACES, {"metadata": {"name": name}}, None, None, None)
                for name in SYSTEM_NAMESPACES
            ],
        )
        self._proxies: dict[tuple[str, str, str], str] = {}
        self._log_lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._watch_lock = threading.Lock()
        self._active_watches = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._kubeconfig_arg = Path(kubeconfig) if kubeconfig is not None else None
        self._tmpdir: str | None = None
        self._api_client: Any = None
        self.kubeconfig_path: Path | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> ApiServer:
        """Bind, serve in a background thread and write the kubeconfig; returns self."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"apiserver-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        openapi.warm_up()
        if self._kubeconfig_arg is None:
            self._tmpdir = tempfile.mkdtemp(prefix="apiserver-emulator-")
            self.kubeconfig_path = Path(self._tmpdir) / "kubeconfig"
        else:
            self.kubeconfig_path = self._kubeconfig_arg
        self.write_kubeconfig(self.kubeconfig_path)
        return self

    def stop(self) -> None:
        """End every watch and connection, stop serving, remove the temporary kubeconfig."""
        if self._httpd is None:
            return
        self.stopping.set()
        self.store.close()
        self._httpd.shutdown()
        with self._httpd.sockets_lock:
            open_sockets = [*self._httpd.open_sockets, *self._httpd.backend_sockets]
            threads = list(self._httpd.threads)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        # Connection threads end once their sockets are shut down (watches, stalls
        # and proxy requests included); wait for them so none outlives stop().
        until = time.monotonic() + 5
        for thread in threads:
            thread.join(timeout=max(0.0, until - time.monotonic()))
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        self._httpd = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("the emulator is not running")
        return int(self._httpd.server_address[1])

    @property
    def address(self) -> str:
        """``HOST:PORT`` for clients: a wildcard bind is reached on loopback, IPv6 in brackets."""
        host = _WILDCARD_CLIENT_HOST.get(self.host, self.host)
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``http://[::1]:PORT`` for IPv6)."""
        return f"http://{self.address}"

    # --- client setup --------------------------------------------------------------------

    def _default_token(self) -> str | None:
        return next(iter(self.tokens), None)

    def configuration(self, token: str | None = None) -> Any:
        """A fresh ``kubernetes.client.Configuration`` for this server.

        It sends ``token`` (default: the first configured token, if any) and
        has urllib3's own retries off (``retries=False``), so every fault
        reaches the code under test instead of being retried away silently.
        """
        from kubernetes import client

        config = client.Configuration(host=self.url)
        config.retries = False
        token = token if token is not None else self._default_token()
        if token:
            config.api_key = {"BearerToken": token}
            config.api_key_prefix = {"BearerToken": "Bearer"}
        return config

    def new_api_client(self, token: str | None = None) -> Any:
        """A new ``kubernetes.client.ApiClient`` (close it yourself)."""
        from kubernetes import client

        return client.ApiClient(self.configuration(token))

    @property
    def api_client(self) -> Any:
        """A shared ``kubernetes.client.ApiClient``, closed when the server stops."""
        if self._api_client is None:
            self._api_client = self.new_api_client()
        return self._api_client

    def write_kubeconfig(self, path: str | os.PathLike[str], token: str | None = None) -> Path:
        """Write a kubeconfig whose current context points at this server."""
        token = token if token is not None else self._default_token()
        user: dict[str, Any] = {"token": token} if token else {}
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": user}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "emulator", "namespace": "default"},
                }
            ],
            "current-context": "emulator",
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        tmp.replace(target)
        return target

    # --- direct object access ------------------------------------------------------------

    @staticmethod
    def _res(resource: str | ResourceType) -> ResourceType:
        return resource if isinstance(resource, ResourceType) else resolve(resource)

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion."""
        return self.store.resource_version

    def create(self, obj: Mapping[str, Any], *, manager: str | None = None) -> dict[str, Any]:
        """Store a new object as if some client created it (ADDED event, new resourceVersion).

        Namespaced objects without a namespace go to ``default``; their namespace
        is created if it does not exist yet (as it would exist in a real cluster
        holding the object). ``manager`` (optional) becomes the owner of its
        fields, to simulate another writer.

        Raises:
            ApiError: 409 AlreadyExists, or 4xx for an invalid object.
            KeyError: the kind is not served.
        """
        res = resource_for_object(obj)
        return self._create(res, dict(obj), None, manager, create_namespace=True)

    def seed(self, *objs: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Create several objects; returns them as stored."""
        return [self.create(obj) for obj in objs]

    def seed_manifests(self, *paths: str | os.PathLike[str]) -> list[str]:
        """Create every object in manifest files or directories (YAML, JSON, Lists).

        Returns one message per problem (unreadable documents, unserved kinds,
        duplicates); the other objects are still created. Namespaces come first,
        and a Namespace that already exists (``default``, or one created for an
        earlier object) is replaced by the manifest's, labels and all.
        """
        from dyntoolset.manifests import read_manifests

        report = read_manifests([str(p) for p in paths])
        problems = [str(error) for error in report.errors]
        ordered = sorted(report.objects, key=lambda item: item.obj.get("kind") != "Namespace")
        for item in ordered:
            try:
                if item.obj.get("kind") == "Namespace" and item.obj.get("apiVersion") == "v1":
                    self.put(item.obj)
                else:
                    self.create(item.obj)
            except KeyError as exc:
                problems.append(f"{item.source} ({item.position}): skipped: {exc.args[0]}")
            except ApiError as exc:
                problems.append(f"{item.source} ({item.position}): {exc}")
        return problems

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A copy of one stored object, or None (``namespace`` None for cluster-scoped)."""
        return self.store.get(self._res(resource), namespace or "", name)

    def list_objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored objects of a resource, sorted by namespace and name."""
        return self.store.items(self._res(resource), namespace)

    def put(self, obj: Mapping[str, Any], *, manager: str | None = None) -> dict[str, Any]:
        """Create or unconditionally replace an object behind the clients' backs.

        The stored ``resourceVersion`` advances and watchers see ADDED or MODIFIED.
        """
        res = resource_for_object(obj)
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or "default") if res.namespaced else ""
        body = copy.deepcopy(dict(obj))
        metadata_of(body).pop("resourceVersion", None)
        if self.store.get(res, namespace, str(meta.get("name") or "")) is None:
            return self._create(res, body, namespace or None, manager, create_namespace=True)
        return self._replace(res, namespace, str(meta["name"]), body, manager)

    def modify(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        change: Callable[[dict[str, Any]], Any],
        *,
        manager: str | None = None,
    ) -> dict[str, Any]:
        """Change a stored object with ``change(obj)``: edit ``obj`` in place, or return a new dict.

        Simulates another writer: a new resourceVersion and a MODIFIED event
        (nothing happens when the change changes nothing).
        """
        res = self._res(resource)

        def apply_change(current: dict[str, Any]) -> dict[str, Any]:
            working = copy.deepcopy(current)
            result = change(working)
            new = result if isinstance(result, dict) else working
            metadata_of(new)["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self._finish_write(res, new, current, manager)

        return self.store.update(res, namespace or "", name, apply_change)

    def delete(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        """Delete a stored object (DELETED event); returns its last state.

        Deleting a Namespace deletes everything in it, as the real namespace
        controller does (see :meth:`_delete_namespace`).

        Raises:
            ApiError: 404 when it does not exist; 403 for ``default``,
                ``kube-system`` and ``kube-public``.
        """
        res = self._res(resource)
        if res is NAMESPACES:
            return self._delete_namespace(name)
        return self.store.delete(res, namespace or "", name)

    def compact(self) -> int:
        """Drop the whole event history: older watches and continue tokens get 410."""
        return self.store.compact()

    def expire_watches(self) -> None:
        """Inject an ERROR 410 Expired into every running watch, which then ends."""
        self.store.expire_watches()

    def send_bookmarks(self) -> None:
        """Make every running watch that allows bookmarks send a BOOKMARK now."""
        self.store.request_bookmarks()

    @property
    def active_watches(self) -> int:
        """How many watch streams are open right now."""
        with self._watch_lock:
            return self._active_watches

    def _watch_started(self) -> None:
        with self._watch_lock:
            self._active_watches += 1

    def _watch_ended(self) -> None:
        with self._watch_lock:
            self._active_watches -= 1

    # --- writes shared by the HTTP side and direct access ----------------------------------

    def _finish_write(
        self,
        res: ResourceType,
        new: dict[str, Any],
        current: dict[str, Any] | None,
        manager: str | None,
    ) -> dict[str, Any]:
        namespace = current["metadata"].get("namespace") if current else None
        rv = (new.get("metadata") or {}).get("resourceVersion")
        prepared = objects.prepare(res, new, namespace, current, self._allocator)
        if rv:
            prepared["metadata"]["resourceVersion"] = rv
        if current is not None:
            for field in ("name", "namespace"):
                if prepared["metadata"].get(field) != current["metadata"].get(field):
                    raise bad_request(f"metadata.{field} cannot be changed")
        if manager is not None:
            fields.track_update(current, prepared, manager, res.api_version)
        return prepared

    def _create(
        self,
        res: ResourceType,
        body: Any,
        namespace: str | None,
        manager: str | None,
        *,
        create_namespace: bool = False,
    ) -> dict[str, Any]:
        if not res.stored:
            raise bad_request(f"{res.plural} are not stored")
        obj = objects.prepare(res, body, namespace, None, self._allocator)
        if manager is not None:
            fields.track_update(None, obj, manager, res.api_version)
        with self.store.cond:  # the namespace cannot go away between the check and the write
            if res.namespaced:
                self._require_namespace(obj["metadata"]["namespace"], create=create_namespace)
            return self.store.create(res, obj)

    # --- namespaces ----------------------------------------------------------------------

    def _require_namespace(self, name: str, *, create: bool) -> None:
        """Make sure namespace ``name`` exists: create it, or refuse as the real server does.

        Raises:
            ApiError: 404 ``namespaces "name" not found`` (what the real
                server's NamespaceLifecycle admission answers a create in a
                namespace that does not exist), unless ``create``.
        """
        if self.store.get(NAMESPACES, "", name) is not None:
            return
        if not create:
            raise not_found(NAMESPACES, name)
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        self.store.create(NAMESPACES, objects.prepare(NAMESPACES, namespace, None, None, None))

    def _delete_namespace(
        self, name: str, expect_rv: str | None = None, expect_uid: str | None = None
    ) -> dict[str, Any]:
        """Delete a namespace and everything in it; returns it as it was while terminating.

        The real server marks the namespace ``Terminating`` (with a
        ``deletionTimestamp``), its namespace controller deletes the contents,
        then the namespace goes. The emulator does the same, but at once and
        under one lock: watchers see MODIFIED (Terminating), a DELETED for each
        object, then the namespace's DELETED; nothing can be created in it
        meanwhile. As upstream, the answer is the Terminating namespace.

        Raises:
            ApiError: 403 for the namespaces that may never be deleted, 404 when
                missing, 409 when a precondition fails.
        """
        if name in IMMORTAL_NAMESPACES:
            raise ApiError(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                {"name": name, "kind": "namespaces"},
            )

        def terminate(current: dict[str, Any]) -> dict[str, Any]:
            if expect_uid and expect_uid != current["metadata"].get("uid"):
                raise conflict(NAMESPACES, name)
            current["metadata"].setdefault("deletionTimestamp", fields.now())
            current["status"] = {"phase": "Terminating"}
            return current

        with self.store.cond:
            terminating = self.store.update(NAMESPACES, "", name, terminate, expect_rv=expect_rv)
            for res in RESOURCES:
                if res.stored and res.namespaced:
                    for obj in self.store.items(res, name):
                        self.store.delete(res, name, obj["metadata"]["name"])
            self.store.delete(NAMESPACES, "", name)
        return terminating

    def _replace(
        self, res: ResourceType, namespace: str, name: str, body: Any, manager: str | None
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request(f"the body must be a {res.kind} object")
        expect = str((body.get("metadata") or {}).get("resourceVersion") or "") or None

        def change(current: dict[str, Any]) -> dict[str, Any]:
            new = copy.deepcopy(body)
            metadata_of(new)["resourceVersion"] = current["metadata"]["resourceVersion"]
            if res.plural == "services" and "status" not in new:
                new["status"] = current.get("status")
            # managedFields sent by the client are ignored: the server keeps its own.
            if current["metadata"].get("managedFields"):
                new["metadata"]["managedFields"] = current["metadata"]["managedFields"]
            else:
                new["metadata"].pop("managedFields", None)
            return self._finish_write(res, new, current, manager)

        return self.store.update(res, namespace, name, change, expect_rv=expect)

    def _patch_object(
        self,
        res: ResourceType,
        namespace: str,
        name: str,
        patch: Callable[[dict[str, Any]], dict[str, Any]],
        manager: str | None,
    ) -> dict[str, Any]:
        def change(current: dict[str, Any]) -> dict[str, Any]:
            new = patch(copy.deepcopy(current))
            typecheck.check_patched(res, new, json.dumps(new))
            metadata_of(new)
            rv = new["metadata"].get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            return self._finish_write(res, new, current, manager)

        return self.store.update(res, namespace, name, change)

    def _apply(
        self, res: ResourceType, namespace: str, name: str, applied: Any, manager: str, force: bool
    ) -> tuple[int, dict[str, Any]]:
        if not isinstance(applied, dict):
            raise bad_request("an apply patch must be an object")
        typecheck.check_applied(res, applied)
        meta = applied.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the "
                f"name on the URL ({name})"
            )
        if res.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the "
                "namespace sent on the request"
            )
        if not applied.get("apiVersion") or not applied.get("kind"):
            raise bad_request("apiVersion and kind must be set in an apply patch")
        wanted_rv = meta.get("resourceVersion")
        config = copy.deepcopy(applied)
        metadata_of(config)["name"] = name
        for _ in range(3):
            if self.store.get(res, namespace, name) is None:
                if wanted_rv:
                    raise not_found(res, name)
                new = fields.apply(None, config, manager, force, res.api_version)
                new["metadata"]["namespace"] = namespace
                obj = objects.prepare(res, new, namespace or None, None, self._allocator)
                if "managedFields" in new["metadata"]:  # none when it applies no field
                    obj["metadata"]["managedFields"] = new["metadata"]["managedFields"]
                try:
                    with self.store.cond:  # an apply that creates is a create
                        if res.namespaced:
                            self._require_namespace(namespace, create=False)
                        return 201, self.store.create(res, obj)
                except ApiError as exc:
                    if exc.code != 409:
                        raise
                    continue  # created meanwhile: apply to it

            def change(current: dict[str, Any]) -> dict[str, Any]:
                if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                    raise conflict(res, name)
                new = fields.apply(current, config, manager, force, res.api_version)
                return self._finish_write(res, new, current, None)

            try:
                return 200, self.store.update(res, namespace, name, change)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        raise ApiError(409, "Conflict", f'{res.plural} "{name}": too many concurrent writes')

    # --- reviews -------------------------------------------------------------------------

    def _review_token(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("a TokenReview must be an object")
        spec = body.get("spec") or {}
        token = str(spec.get("token") or "")
        wanted = list(spec.get("audiences") or [])
        status: dict[str, Any] = {"authenticated": False, "user": {}}
        user = self.token_reviews.get(token) if token else None
        if user is None:
            status["error"] = "invalid bearer token"
        else:
            granted = (
                wanted
                if user.audiences is None
                else [a for a in wanted if a in user.audiences]
                if wanted
                else list(user.audiences)
            )
            if wanted and not granted:
                status["error"] = "token audiences are invalid for the target audiences"
            else:
                status = {
                    "authenticated": True,
                    "user": {
                        "username": user.username,
                        "uid": user.uid,
                        "groups": list(user.groups),
                        "extra": {k: list(v) for k, v in user.extra.items()},
                    },
                }
                if granted:
                    status["audiences"] = granted
        return {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    def _decide(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The ``status`` of an access review: :attr:`access_policy`, else the rules, say."""
        denied = False
        if self.access_policy is not None:
            decision = self.access_policy(copy.deepcopy(spec))
            allowed, reason = decision if isinstance(decision, tuple) else (bool(decision), "")
        elif not self.access_rules:
            allowed, reason = False, "no access policy is configured in the emulator"
        else:
            matching = [(allows, rule) for allows, rule in self.access_rules if rule.matches(spec)]
            refusal = next((rule for allows, rule in matching if not allows), None)
            grant = next((rule for allows, rule in matching if allows), None)
            if refusal is not None:
                allowed, denied, reason = False, True, f"denied by emulator rule: {refusal}"
            elif grant is not None:
                allowed, reason = True, f"allowed by emulator rule: {grant}"
            else:
                allowed, reason = False, "no emulator rule allows it"
        status: dict[str, Any] = {"allowed": bool(allowed)}
        if denied:
            status["denied"] = True
        if reason:
            status["reason"] = reason
        return status

    def allow(
        self,
        user: str | None,
        verb: str | Iterable[str],
        *,
        path: str | Iterable[str] | None = None,
        resource: str | None = None,
        api_group: str = "",
        namespace: str | None = None,
        group: str | None = None,
    ) -> AccessRule:
        """Let ``user`` (``None``: anyone; or members of ``group``) ``verb`` a path or resource.

        ``path`` is a non-resource URL (or several; a trailing ``*`` is a
        prefix, as RBAC's ``nonResourceURLs``); ``resource`` a plural such
        as ``services`` or ``services/proxy`` in ``api_group`` (``"*"``: any).
        The rules decide SubjectAccessReviews and SelfSubjectAccessReviews
        while no :attr:`access_policy` is set. Returns the rule.
        """
        rule = self._rule(user, verb, path, resource, api_group, namespace, group)
        self.access_rules.append((True, rule))
        return rule

    def deny(
        self,
        user: str | None,
        verb: str | Iterable[str],
        *,
        path: str | Iterable[str] | None = None,
        resource: str | None = None,
        api_group: str = "",
        namespace: str | None = None,
        group: str | None = None,
    ) -> AccessRule:
        """Like :meth:`allow`, but an explicit denial (``status.denied``), which wins."""
        rule = self._rule(user, verb, path, resource, api_group, namespace, group)
        self.access_rules.append((False, rule))
        return rule

    @staticmethod
    def _rule(
        user: str | None,
        verb: str | Iterable[str],
        path: str | Iterable[str] | None,
        resource: str | None,
        api_group: str,
        namespace: str | None,
        group: str | None,
    ) -> AccessRule:
        if (path is None) == (resource is None):
            raise ValueError("an access rule names either path or resource")
        return AccessRule(
            verbs=(verb,) if isinstance(verb, str) else tuple(verb),
            user=user,
            group=group,
            paths=() if path is None else (path,) if isinstance(path, str) else tuple(path),
            resource=resource,
            api_group=api_group,
            namespace=namespace,
        )

    def _review_access(self, body: Any) -> dict[str, Any]:
        """A SubjectAccessReview, validated as upstream, decided by :meth:`_decide`.

        Raises:
            ApiError: 400 for a body that is not an object; 422 unless exactly
                one of ``resourceAttributes`` and ``nonResourceAttributes`` is
                set, or when neither ``user`` nor ``groups`` is.
        """
        if not isinstance(body, dict) or not isinstance(body.get("spec") or {}, dict):
            raise bad_request("a SubjectAccessReview must be an object with a spec")
        spec = body.get("spec") or {}
        errors = self._attribute_errors(spec)
        if not spec.get("user") and not spec.get("groups"):
            errors.append(
                validation.invalid(
                    "spec.user", "", "at least one of user or group must be specified"
                )
            )
        if errors:
            raise validation.refuse(resolve("subjectaccessreviews"), "", errors)
        return {
            "kind": "SubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": self._decide(spec),
        }

    @staticmethod
    def _attribute_errors(spec: dict[str, Any]) -> list[Any]:
        """Exactly one of ``resourceAttributes`` and ``nonResourceAttributes``, as upstream."""
        errors = []
        if spec.get("resourceAttributes") and spec.get("nonResourceAttributes"):
            errors.append(
                validation.invalid(
                    "spec.nonResourceAttributes",
                    validation.GoValue(json.dumps(spec["nonResourceAttributes"])),
                    "cannot be specified in combination with resourceAttributes",
                )
            )
        if not spec.get("resourceAttributes") and not spec.get("nonResourceAttributes"):
            errors.append(
                validation.invalid(
                    "spec.resourceAttributes",
                    "null",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )
            )
        return errors

    def _review_self_access(self, body: Any, who: TokenUser) -> dict[str, Any]:
        """A SelfSubjectAccessReview: the policy decides it as a SubjectAccessReview of ``who``.

        The policy sees the spec with ``user``, ``groups``, ``uid`` and
        ``extra`` of the requester filled in, as the real server builds the
        authorization attributes from the request's user.

        Raises:
            ApiError: 400 for a body that is not an object; 422 unless exactly
                one of ``resourceAttributes`` and ``nonResourceAttributes`` is set.
        """
        if not isinstance(body, dict) or not isinstance(body.get("spec") or {}, dict):
            raise bad_request("a SelfSubjectAccessReview must be an object with a spec")
        spec = body.get("spec") or {}
        errors = self._attribute_errors(spec)
        if errors:
            raise validation.refuse(resolve("selfsubjectaccessreviews"), "", errors)
        info = who.user_info()
        subject = {
            **spec,
            "user": info["username"],
            "groups": info["groups"],
            "uid": who.uid,
            "extra": info.get("extra", {}),
        }
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": self._decide(subject),
        }

    def _review_self(self, who: TokenUser) -> dict[str, Any]:
        """A SelfSubjectReview: who the requester is (``kubectl auth whoami``)."""
        return {
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": who.user_info()},
        }

    def add_token(
        self,
        token: str,
        username: str,
        *,
        groups: Iterable[str] = (),
        audiences: Iterable[str] | None = None,
        uid: str = "",
    ) -> TokenUser:
        """Make TokenReview answer ``token`` as ``username`` (convenience for ``token_reviews``)."""
        user = TokenUser(
            username, uid, tuple(groups), tuple(audiences) if audiences is not None else None
        )
        self.token_reviews[token] = user
        return user

    # --- service proxy -------------------------------------------------------------------

    def register_proxy(self, namespace: str, service: str, port: int | str, target: str) -> None:
        """Forward ``services/{service}:{port}/proxy/...`` to ``target`` (e.g. a local URL).

        ``port`` may be the port number or its name; both forms of the URL work
        when the Service lists the port.
        """
        self._proxies[(namespace, service, str(port))] = target.rstrip("/")

    def unregister_proxy(self, namespace: str, service: str, port: int | str) -> None:
        """Forget a proxy target (the proxy then answers 503)."""
        self._proxies.pop((namespace, service, str(port)), None)

    def _proxy_target(
        self, namespace: str, name: str, port: str, service: dict[str, Any]
    ) -> str | None:
        ports = (service.get("spec") or {}).get("ports") or []
        candidates = [port] if port else []
        for entry in ports:
            number, port_name = str(entry.get("port")), str(entry.get("name") or "")
            if (not port and len(ports) == 1) or port in (number, port_name):
                candidates += [number, port_name]
        for candidate in candidates:
            target = self._proxies.get((namespace, name, candidate))
            if target is not None:
                return target
        return None

    # --- faults --------------------------------------------------------------------------

    def _fault(self, kind: str, match: dict[str, Any], **action: Any) -> Fault:
        unknown = set(match) - set(_MATCH_FIELDS)
        if unknown:
            raise TypeError(f"unknown fault match fields: {sorted(unknown)}")
        return self.faults.add(Fault(kind, **match, **action))

    def fail(
        self,
        status: int = 500,
        *,
        retry_after: float | None = None,
        reason: str | None = None,
        message: str | None = None,
        **match: Any,
    ) -> Fault:
        """Answer matching requests with ``status`` (a ``Status`` body; ``Retry-After`` if set).

        Match with ``method``, ``verb``, ``resource``, ``namespace``, ``name``,
        ``path`` (regex) and ``when`` (predicate); bound with ``times``,
        ``probability`` and ``skip`` (let the first N matches through). The
        same keywords work for every fault method.
        """
        return self._fault(
            "status", match, status=status, retry_after=retry_after, reason=reason, message=message
        )

    def drop(self, *, after_events: int | None = None, **match: Any) -> Fault:
        """Drop the connection mid-body (half a response), or mid-watch after N events."""
        return self._fault("drop", match, after_events=after_events)

    def stall(self, seconds: float, *, after_events: int | None = None, **match: Any) -> Fault:
        """Send no bytes for ``seconds`` then cut the connection.

        For a watch with ``after_events`` set, the stream first delivers that
        many events, then goes silent (no bookmarks either).
        """
        return self._fault("stall", match, seconds=seconds, after_events=after_events)

    def gone(self, *, after_events: int = 0, message: str | None = None, **match: Any) -> Fault:
        """Inject 410 Expired: in-stream ERROR for a watch (after N events), 410 otherwise."""
        return self._fault("gone", match, after_events=after_events, message=message)

    def delay(self, seconds: float, **match: Any) -> Fault:
        """Add latency before matching requests are served (combines with other faults)."""
        return self._fault("latency", match, seconds=seconds)

    # --- request log ---------------------------------------------------------------------

    def _log(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._requests.append(record)

    @property
    def open_connections(self) -> int:
        """Client connections open right now (accepted and not yet closed).

        A client that caps its connections is checked by counting these while
        its requests are held (e.g. by a service proxy backend that waits):
        nothing closes then, so the count is exact.
        """
        if self._httpd is None:
            return 0
        with self._httpd.sockets_lock:
            return len(self._httpd.open_sockets)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served so far, in order."""
        with self._log_lock:
            return list(self._requests)

    def find_requests(self, **match: Any) -> list[RequestRecord]:
        """Requests whose fields equal the given ones, e.g. ``verb="update", resource="configmaps"``.

        ``verb`` may also be a tuple of verbs.
        """
        out = []
        for record in self.requests:
            ok = True
            for key, value in match.items():
                actual = getattr(record, key)
                if isinstance(value, tuple | list | set | frozenset):
                    ok = actual in value
                else:
                    ok = actual == value
                if not ok:
                    break
            if ok:
                out.append(record)
        return out

    def count(self, **match: Any) -> int:
        """How many requests match (see :meth:`find_requests`)."""
        return len(self.find_requests(**match))

    @property
    def counters(self) -> collections.Counter[tuple[str | None, str | None, int]]:
        """Request counts by ``(verb, resource, status)``, e.g. ``[("list", "services", 200)]``."""
        return collections.Counter((r.verb, r.resource, r.status) for r in self.requests)

    def writes(self, resource: str | None = None, **match: Any) -> list[RequestRecord]:
        """Successful create/update/patch/delete requests, optionally of one resource."""
        if resource is not None:
            match["resource"] = self._res(resource).plural
        return [
            r
            for r in self.find_requests(
                verb=("create", "update", "patch", "delete", "deletecollection"), **match
            )
            if 200 <= r.status < 300
        ]

    def clear_requests(self) -> None:
        """Forget the request log."""
        with self._log_lock:
            self._requests.clear()
