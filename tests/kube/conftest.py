"""A whole controller stack (cache, store, ConfigMap watch, reconciler) against the emulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest

from dyntoolset.controller.reconciler import Reconciler
from dyntoolset.kube.configmaps import ConfigMapStore, ConfigMapWatch
from dyntoolset.kube.errors import Backoff
from dyntoolset.kube.services import ServiceCache
from dyntoolset.metrics import Metrics
from dyntoolset.model import Discovered
from dyntoolset.pipeline import Cycle, Engine
from dyntoolset.snapshot import service_from_object
from dyntoolset.testing.apiserver import ApiServer
from tests.kube._support import FAST, PATIENCE, fast_backoff, wait_for

NAMESPACE = "kubernaut-system"
NAME = "kubernaut-toolset-config"

CONFIG = """
health_checks: {enabled: false}
output: {name: kubernaut-toolset-config, namespace: kubernaut-system}
"""


def create_namespace(apiserver: ApiServer, name: str = NAMESPACE) -> None:
    """Create ``name`` unless it exists: as in a real cluster, the output ConfigMap's
    namespace exists before the controller runs (the API server refuses a create
    in a missing namespace)."""
    if apiserver.get("namespaces", None, name) is None:
        apiserver.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


@pytest.fixture(autouse=True)
def output_namespace(request: pytest.FixtureRequest) -> None:
    """Tests that use the ``apiserver`` fixture get the output namespace created."""
    if "apiserver" in request.fixturenames:
        create_namespace(request.getfixturevalue("apiserver"))


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path: Path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(CONFIG)
    return Engine.load(path)


@attrs.define
class Stack:
    """The controller's parts, started; :meth:`desired` computes the goal independently."""

    apiserver: ApiServer
    engine: Engine
    cache: ServiceCache
    store: ConfigMapStore
    watch: ConfigMapWatch
    reconciler: Reconciler
    metrics: Metrics

    def configmap(self) -> dict[str, Any] | None:
        return self.apiserver.get("configmaps", NAMESPACE, NAME)

    def desired(self) -> Cycle:
        """The engine's cycle over the emulator's Services, merged into the stored ConfigMap."""
        services = [service_from_object(o) for o in self.apiserver.list_objects("services")]
        return self.engine.cycle(services, existing=self.configmap(), now="2000-01-01T00:00:00Z")

    def converged(self) -> bool:
        """The stored ConfigMap is what the engine wants: merging changes nothing."""
        stored = self.configmap()
        merge = self.desired().merge
        return stored is not None and merge is not None and not merge.changed

    def writes(self) -> int:
        return len(self.apiserver.writes("configmaps", namespace=NAMESPACE))


StackFactory = Callable[..., Stack]


@pytest.fixture
def make_stack(apiserver: ApiServer, engine: Engine) -> Iterator[StackFactory]:
    stacks: list[Stack] = []

    def make(
        *, start: bool = True, watch_configmap: bool = True, settle: bool = False, **options: Any
    ) -> Stack:
        """``settle``: the cache and the ConfigMap watch have listed before the reconciler
        starts, so their first notifications coalesce into its first reconcile."""
        metrics = options.pop("metrics", None) or Metrics()
        options.setdefault("debounce", 0.02)
        options.setdefault("resync_interval", 3600.0)
        options.setdefault("backoff", Backoff(0.01, 0.2))
        cache = ServiceCache(apiserver.api_client, timeouts=FAST, backoff=fast_backoff)
        store = ConfigMapStore(apiserver.api_client, NAMESPACE, NAME, timeouts=FAST)
        reconciler = Reconciler(
            options.pop("engine", engine), cache, store, metrics=metrics, **options
        )
        watch = ConfigMapWatch(
            apiserver.api_client,
            NAMESPACE,
            NAME,
            reconciler.on_configmap_event,
            timeouts=FAST,
            backoff=fast_backoff,
        )
        stack = Stack(apiserver, engine, cache, store, watch, reconciler, metrics)
        stacks.append(stack)
        if start:
            cache.start()
            if watch_configmap:
                watch.start()
            if settle:
                assert cache.wait_synced(PATIENCE)
                wait_for(lambda: watch.reflector is not None and watch.reflector.lists)
            reconciler.start()
        return stack

    yield make
    for stack in stacks:
        stack.reconciler.stop(10)
        stack.watch.stop()
        stack.cache.stop()
        stack.store.close()


class GatedHealth:
    """A health checker (the pipeline's HealthCheck boundary) that waits for a gate.

    Marks everything healthy; ``entered`` is set while a check is waiting.
    """

    def __init__(self) -> None:
        import threading

        self.gate = threading.Event()
        self.entered = threading.Event()
        self.checked: list[list[str]] = []

    def check(self, discovered: Sequence[Discovered]) -> list[Discovered]:
        from dyntoolset.model import HealthStatus

        self.entered.set()
        self.gate.wait(30)
        self.checked.append([d.service.name for d in discovered])
        return [attrs.evolve(d, health=HealthStatus(True, "ok", 0.0)) for d in discovered]
