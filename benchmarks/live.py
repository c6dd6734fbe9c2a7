"""The live controller against the API emulator, for workloads 3, 4, 5 and 7.

The emulator (:class:`~dyntoolset.testing.apiserver.ApiServer`, Python) runs
in a process of its own (:class:`Emulator`), seeded with the realistic
cluster of :mod:`benchmarks.cluster` through its ``seed``; the controller
parts (:class:`~dyntoolset.kube.services.ServiceCache`,
:class:`~dyntoolset.controller.reconciler.Reconciler`,
:class:`~dyntoolset.kube.configmaps.ConfigMapStore` and
:class:`~dyntoolset.kube.configmaps.ConfigMapWatch`, the
:class:`~dyntoolset.pipeline.Engine` with every installed plugin) run in the
benchmark's process and talk to it over real HTTP (:class:`Controller`). So
``time.process_time()`` in the benchmark's process is the client's CPU alone;
the emulator's CPU is read from its own process (:meth:`Emulator.cpu`).

Health checks are off (``health=None``: every match is published): they
would probe the emulator's service proxy, and their cost is workload 6's.

Run as a script, this module is the child process of workload 3: one
initial sync (``ours``: the controller; ``typed``: the official client's
typed list) in a fresh interpreter, printing its costs as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import resource
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

#: Where the controller writes (the configuration's default output).
OUTPUT_NAMESPACE = "kubernaut-system"
OUTPUT_NAME = "kubernaut-toolset-config"
#: Page size of every list (the controller's default).
PAGE_SIZE = 500
#: Services seeded for a full run; ``DYNTOOLSET_BENCH_SERVICES`` overrides it
#: (a smaller cluster on a machine too busy to run 50,000 in time).
FULL_SIZE = 50_000


def cluster_size(quick: bool) -> int:
    """How many Services the emulator is seeded with: 300 in quick mode."""
    if quick:
        return 300
    return int(os.environ.get("DYNTOOLSET_BENCH_SERVICES") or FULL_SIZE)


# -- the emulator's process -----------------------------------------------------------


def _churn(
    api: Any, keys: list[tuple[str, str]], rate: float, seconds: float, change: str
) -> dict[str, float]:
    """Update Services at ``rate`` per second for ``seconds``, round-robin over ``keys``.

    ``change`` is ``label`` (a label no detector looks at, on unrelated
    Services: the output must not change) or ``toolset`` (the
    ``kubernaut.io/toolset-health-path`` annotation of the annotated
    Services of :func:`_custom_services`, which the published toolset
    carries: the output changes).
    """
    done = 0
    start = time.monotonic()
    end = start + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        # Catch up in small bursts when behind, sleep when ahead: the rate holds on average.
        due = int((now - start) * rate) + 1
        while done < due:
            namespace, name = keys[done % len(keys)]
            serial = done

            def edit(obj: dict[str, Any], serial: int = serial) -> None:
                meta = obj["metadata"]
                if change == "label":
                    meta.setdefault("labels", {})["bench.dyntoolset.io/churn"] = str(serial)
                else:
                    meta.setdefault("annotations", {})["kubernaut.io/toolset-health-path"] = (
                        f"/health/{serial}"
                    )

            api.modify("services", namespace, name, edit)
            done += 1
        pause = start + done / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return {"updates": done, "seconds": time.monotonic() - start}


#: The namespace of the annotated Services the churn of toolsets updates.
CHURN_NAMESPACE = "bench-churn"
CHURN_SERVICES = 20


def _custom_services(api: Any) -> list[tuple[str, str]]:
    """``CHURN_SERVICES`` Services annotated for the custom detector (created the first time)."""
    keys = []
    for index in range(CHURN_SERVICES):
        name = f"churn-api-{index}"
        if api.get("services", CHURN_NAMESPACE, name) is None:
            api.create(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": name,
                        "namespace": CHURN_NAMESPACE,
                        "annotations": {
                            "kubernaut.io/toolset": "enabled",
                            "kubernaut.io/toolset-type": "churn-api",
                            "kubernaut.io/toolset-health-path": "/healthz",
                        },
                    },
                    "spec": {"ports": [{"name": "http", "port": 8080}]},
                }
            )
        keys.append((CHURN_NAMESPACE, name))
    return keys


def _delete_output(api: Any) -> bool:
    """Delete the output ConfigMap, if it exists (so the next sync writes it again)."""
    if api.get("configmaps", OUTPUT_NAMESPACE, OUTPUT_NAME) is None:
        return False
    api.delete("configmaps", OUTPUT_NAMESPACE, OUTPUT_NAME)
    return True


def _serve(conn: Connection, count: int, options: dict[str, Any]) -> None:
    """The emulator process: seed, serve, and answer the parent's commands until ``stop``."""
    from benchmarks.cluster import cluster_objects
    from dyntoolset.testing.apiserver import ApiServer

    objects = cluster_objects(count)
    api = ApiServer(**options)
    started = time.process_time()
    api.seed(*objects)
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OUTPUT_NAMESPACE}})
    seed_cpu = time.process_time() - started
    # The churn of labels touches unrelated Services (Helm workloads).
    unrelated = [
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in objects
        if "helm.sh/chart" in (o["metadata"].get("labels") or {})
        and "prometheus" not in o["metadata"]["name"]
    ]
    del objects
    gc.collect()
    api.start()
    conn.send(("ready", {"url": api.url, "seed_cpu": seed_cpu}))
    commands: dict[str, Callable[..., Any]] = {
        "cpu": time.process_time,
        "resource_version": lambda: api.resource_version,
        "writes": lambda resource: len(api.writes(resource)),
        "watches": lambda: api.active_watches,
        "create": lambda obj: api.create(obj)["metadata"]["resourceVersion"],
        "churn": lambda rate, seconds, change: _churn(
            api, unrelated if change == "label" else _custom_services(api), rate, seconds, change
        ),
        "errors": lambda: list(api.server_errors),
        "delete_output": lambda: _delete_output(api),
    }
    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                break
            try:
                conn.send(("ok", commands[command](*args)))
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
                conn.send(("error", f"{command}: {exc!r}"))
    finally:
        api.stop()
        conn.send(("stopped", None))


class Emulator:
    """The API emulator seeded with ``count`` Services, in a process of its own.

    Use as a context manager; :attr:`url` is where it listens. Commands run in
    its process (so their CPU is the server's): :meth:`cpu`, :meth:`writes`,
    :meth:`churn`, :meth:`create`.
    """

    def __init__(
        self, count: int, *, history_limit: int = 1000, bookmark_interval: float = 60.0
    ) -> None:
        self.count = count
        self.options = {"history_limit": history_limit, "bookmark_interval": bookmark_interval}
        self.url = ""
        self.seed_cpu = 0.0
        self._conn: Connection | None = None
        self._process: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> Emulator:
        # fork: no re-import of the main module; start it before this process has threads.
        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, self.count, self.options), name="emulator", daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent
        kind, ready = parent.recv()
        if kind != "ready":
            raise RuntimeError(f"the emulator did not start: {ready}")
        self.url = ready["url"]
        self.seed_cpu = ready["seed_cpu"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            try:
                self._conn.send(("stop", ()))
                self._conn.recv()
            except (EOFError, OSError):
                pass
            self._conn.close()
        if self._process is not None:
            self._process.join(30)
            if self._process.is_alive():
                self._process.kill()

    def call(self, command: str, *args: Any) -> Any:
        """Run ``command`` in the emulator's process; its result."""
        assert self._conn is not None, "the emulator is not running"
        with self._lock:
            self._conn.send((command, args))
            kind, result = self._conn.recv()
        if kind != "ok":
            raise RuntimeError(f"emulator command failed: {result}")
        return result

    def cpu(self) -> float:
        """CPU seconds the emulator's process has used."""
        return float(self.call("cpu"))

    def writes(self, resource: str = "configmaps") -> int:
        """Successful writes to ``resource`` so far (through the API)."""
        return int(self.call("writes", resource))

    def churn(self, rate: float, seconds: float, change: str) -> dict[str, float]:
        """Update Services at ``rate``/s for ``seconds`` (see :func:`_churn`); blocks."""
        result: dict[str, float] = self.call("churn", rate, seconds, change)
        return result

    def delete_output(self) -> bool:
        """Delete the output ConfigMap (if any): the next controller's first reconcile writes."""
        return bool(self.call("delete_output"))

    def server_errors(self) -> list[str]:
        """Unexpected errors the emulator met while serving (should stay empty)."""
        errors: list[str] = self.call("errors")
        return errors


# -- the controller in this process ---------------------------------------------------


def api_client(url: str) -> Any:
    """A ``kubernetes`` client for the emulator at ``url``."""
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = url
    configuration.retries = False
    return client.ApiClient(configuration)


class Controller:
    """What ``dyntoolset run`` wires, against ``url``, without probes or leader election.

    ``resync_interval`` and ``debounce`` as the reconciler takes them. Every
    completed reconcile is recorded in :attr:`outcomes` (through the
    reconciler's public :meth:`~dyntoolset.controller.reconciler.Reconciler.on_reconcile`).
    """

    def __init__(self, url: str, *, resync_interval: float = 300.0, debounce: float = 0.2) -> None:
        from dyntoolset.controller.reconciler import Reconciler
        from dyntoolset.kube.configmaps import ConfigMapStore, ConfigMapWatch
        from dyntoolset.kube.services import ServiceCache
        from dyntoolset.metrics import Metrics
        from dyntoolset.pipeline import Engine

        self.client = api_client(url)
        self.engine = Engine.load(None)
        self.cache = ServiceCache(self.client, page_size=PAGE_SIZE)
        self.store = ConfigMapStore(self.client, OUTPUT_NAMESPACE, OUTPUT_NAME)
        self.reconciler = Reconciler(
            self.engine,
            self.cache,
            self.store,
            metrics=Metrics(),
            resync_interval=resync_interval,
            debounce=debounce,
        )
        self.watch = ConfigMapWatch(
            self.client, OUTPUT_NAMESPACE, OUTPUT_NAME, self.reconciler.on_configmap_event
        )
        self._done = threading.Condition()
        #: Every finished reconcile's outcome, in order (``outcome.reasons`` says why it ran).
        self.outcomes: list[Any] = []
        self.reconciler.on_reconcile(self._record)

    def _record(self, outcome: Any) -> None:
        with self._done:
            self.outcomes.append(outcome)
            self._done.notify_all()

    def start(self) -> None:
        """Start the cache, the ConfigMap watch and the reconciler (as the runner does)."""
        self.cache.start()
        self.watch.start()
        self.reconciler.start()

    def stop(self) -> None:
        """Stop in reverse order and close the connections."""
        self.reconciler.stop(30)
        self.watch.stop()
        self.cache.stop()
        self.store.close()
        self.client.close()

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float) -> bool:
        """Wait until ``predicate(outcomes)`` holds (``False`` after ``timeout`` seconds)."""
        with self._done:
            return self._done.wait_for(lambda: predicate(self.outcomes), timeout)

    def wait_written(self, timeout: float = 600.0) -> Any:
        """Wait for the first reconcile that wrote the ConfigMap; its outcome."""
        if not self.wait_for(lambda outs: any(o.wrote for o in outs), timeout):
            raise RuntimeError(f"no ConfigMap write within {timeout:.0f} s: {self.outcomes[-3:]}")
        return next(o for o in self.outcomes if o.wrote)


class ConfigMapObserver:
    """A client's watch of the output ConfigMap: every version seen, with when it arrived."""

    def __init__(self, url: str) -> None:
        from dyntoolset.kube.configmaps import ConfigMapWatch

        self.client = api_client(url)
        self._cond = threading.Condition()
        self.seen: list[tuple[float, dict[str, Any] | None]] = []
        self.watch = ConfigMapWatch(self.client, OUTPUT_NAMESPACE, OUTPUT_NAME, self._event)

    def _event(self, reason: str, obj: dict[str, Any] | None) -> None:
        arrived = time.perf_counter()
        with self._cond:
            self.seen.append((arrived, obj))
            self._cond.notify_all()

    def start(self) -> None:
        self.watch.start()

    def stop(self) -> None:
        self.watch.stop()
        self.client.close()

    def wait_for(self, text: str, after: int, timeout: float) -> float | None:
        """When a version containing ``text`` arrived among the events from index ``after`` on."""

        def found() -> float | None:
            for arrived, obj in self.seen[after:]:
                data = (obj or {}).get("data") or {}
                if any(text in value for value in data.values()):
                    return arrived
            return None

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                return None
            return found()


# -- workload 3's child: one initial sync in a fresh interpreter ---------------------------


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


#: When the cache of the child's controller became synced (``time.process_time()``).
SPLIT: dict[str, float] = {}


def prepare_ours(url: str) -> Callable[[], tuple[Any, int, Callable[[], None]]]:
    """The controller, built (plugins loaded, clients made); the returned call syncs it:
    list → snapshots → discovery → ConfigMap written."""
    controller = Controller(url)

    def synced(reason: str) -> None:
        # Process CPU when the cache is complete: the list and the snapshots alone.
        if reason == "synced":
            SPLIT["cpu_synced"] = time.process_time()

    controller.cache.on_change(synced)

    def sync() -> tuple[Any, int, Callable[[], None]]:
        controller.start()
        controller.wait_written()
        return controller, controller.cache.size, controller.stop

    return sync


def prepare_typed(url: str) -> Callable[[], tuple[Any, int, Callable[[], None]]]:
    """The official client's typed models, listed page by page and kept as the cache."""
    from kubernetes import client

    api = api_client(url)
    core = client.CoreV1Api(api)

    def sync() -> tuple[Any, int, Callable[[], None]]:
        items: list[Any] = []
        token = None
        while True:
            page = core.list_service_for_all_namespaces(
                limit=PAGE_SIZE, _continue=token, _request_timeout=(5, 30)
            )
            items.extend(page.items)
            token = page.metadata._continue
            if not token:
                break
        return items, len(items), api.close

    return sync


def child_main(argv: list[str] | None = None) -> int:
    """``python benchmarks/live.py sync --side ours|typed --url URL [--memory]``."""
    parser = argparse.ArgumentParser(prog="benchmarks/live.py")
    parser.add_argument("command", choices=["sync"])
    parser.add_argument("--side", choices=["ours", "typed"], required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument(
        "--memory", action="store_true", help="trace allocations (retained bytes; slower)"
    )
    args = parser.parse_args(argv)
    # Imports, plugins and clients are not per-Service: ready before measuring.
    sync = (prepare_ours if args.side == "ours" else prepare_typed)(args.url)
    gc.collect()
    rss_before = _rss_mib()
    if args.memory:
        tracemalloc.start()
    cpu_before = time.process_time()
    wall_before = time.perf_counter()
    kept, count, close = sync()
    cpu = time.process_time() - cpu_before
    cpu_synced = SPLIT.get("cpu_synced", cpu_before + cpu) - cpu_before
    wall = time.perf_counter() - wall_before
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] if args.memory else 0
    rss_after = _rss_mib()
    close()
    del kept
    print(
        json.dumps(
            {
                "side": args.side,
                "count": count,
                "cpu": cpu,
                "cpu_synced": cpu_synced,
                "wall": wall,
                "retained_bytes": retained,
                "rss_delta_mib": rss_after - rss_before,
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    return 0


def service(release: str, namespace: str) -> dict[str, Any]:
    """The Prometheus Service of a kube-prometheus-stack release (``<release>-prometheus``)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"{release}-prometheus",
            "namespace": namespace,
            "labels": {
                "app": f"{release}-prometheus",
                "app.kubernetes.io/instance": release,
                "app.kubernetes.io/managed-by": "Helm",
                "app.kubernetes.io/part-of": release,
                "chart": "kube-prometheus-stack-65.1.1",
                "release": release,
                "self-monitor": "true",
            },
        },
        "spec": {
            "ports": [{"name": "http-web", "port": 9090, "targetPort": 9090}],
            "selector": {
                "app.kubernetes.io/name": "prometheus",
                "operator.prometheus.io/name": f"{release}-prometheus",
            },
        },
    }


if __name__ == "__main__":
    sys.exit(child_main())
