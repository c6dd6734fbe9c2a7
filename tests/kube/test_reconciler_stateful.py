"""Stateful property test: Service churn, operator edits, deletion and API faults, interleaved.

After every step the ConfigMap must converge to what the engine computes
independently from the emulator's Services (merging it again changes
nothing), and every byte the operator wrote (``overrides.yaml``, foreign
keys) must still be there.
"""

from __future__ import annotations

import os
import random
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from dyntoolset.controller.reconciler import Reconciler
from dyntoolset.kube.configmaps import ConfigMapStore, ConfigMapWatch
from dyntoolset.kube.errors import Backoff
from dyntoolset.kube.services import ServiceCache
from dyntoolset.metrics import Metrics
from dyntoolset.model import OVERRIDES_KEY
from dyntoolset.pipeline import Engine
from dyntoolset.plugins import load_plugins
from dyntoolset.testing.apiserver import ApiServer
from tests.kube._support import FAST, fast_backoff, prometheus, service, wait_for
from tests.kube.conftest import NAME, NAMESPACE, Stack, create_namespace

ENGINE: Engine | None = None


def engine() -> Engine:
    global ENGINE  # built once: loading plugins is the slow part
    if ENGINE is None:
        from dyntoolset.config import parse_config, resolve_config

        plugins = load_plugins()
        raw, _ = parse_config("health_checks: {enabled: false}\n")
        assert raw is not None
        config, problems = resolve_config(raw, plugins, "test")
        assert config is not None and not problems
        ENGINE = Engine(config, plugins)
    return ENGINE


NAMES = st.sampled_from(["alpha", "beta", "gamma"])
NAMESPACES = st.sampled_from(["monitoring", "shop"])
KINDS = st.sampled_from(["prometheus", "grafana", "plain"])
OVERRIDE_TEXTS = st.sampled_from(
    [
        "toolsets:\n  prometheus/metrics:\n    enabled: false\n",
        "toolsets: {}\n# a comment the operator keeps\n",
        "not: [valid\n",  # broken YAML: reported, left alone, never rewritten
        "",
    ]
)
FOREIGN_KEYS = st.sampled_from(["notes.txt", "team.json"])
FAULTS = st.sampled_from(
    ["409-update", "410-watch", "500-get", "500-update", "429-create", "drop-watch", "500-list"]
)


def body(kind: str, name: str, namespace: str) -> dict[str, Any]:
    if kind == "prometheus":
        return prometheus(name, namespace)
    if kind == "grafana":
        return service(name, namespace, labels={"app.kubernetes.io/name": "grafana"}, port=3000)
    return service(name, namespace)


class ControllerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.api = ApiServer(seed=random.randrange(1000)).start()
        create_namespace(self.api)
        metrics = Metrics()
        cache = ServiceCache(self.api.api_client, timeouts=FAST, backoff=fast_backoff)
        store = ConfigMapStore(self.api.api_client, NAMESPACE, NAME, timeouts=FAST)
        reconciler = Reconciler(
            engine(),
            cache,
            store,
            metrics=metrics,
            debounce=0.01,
            resync_interval=3600.0,
            backoff=Backoff(0.01, 0.1),
        )
        watch = ConfigMapWatch(
            self.api.api_client,
            NAMESPACE,
            NAME,
            reconciler.on_configmap_event,
            timeouts=FAST,
            backoff=fast_backoff,
        )
        self.stack = Stack(self.api, engine(), cache, store, watch, reconciler, metrics)
        cache.start()
        watch.start()
        reconciler.start()
        # What the operator wrote and expects to find, byte for byte.
        self.operator: dict[str, str] = {}

    def teardown(self) -> None:
        self.stack.reconciler.stop(10)
        self.stack.watch.stop()
        self.stack.cache.stop()
        self.stack.store.close()
        self.api.stop()

    # -- Service churn ------------------------------------------------------------------

    @rule(kind=KINDS, name=NAMES, namespace=NAMESPACES)
    def put_service(self, kind: str, name: str, namespace: str) -> None:
        self.api.put(body(kind, name, namespace))

    @rule(name=NAMES, namespace=NAMESPACES)
    def delete_service(self, name: str, namespace: str) -> None:
        if self.api.get("services", namespace, name) is not None:
            self.api.delete("services", namespace, name)

    # -- the operator ---------------------------------------------------------------------

    def _edit(self, change: dict[str, str]) -> None:
        def apply(obj: dict[str, Any]) -> None:
            obj.setdefault("data", {}).update(change)

        if self.api.get("configmaps", NAMESPACE, NAME) is not None:
            self.api.modify("configmaps", NAMESPACE, NAME, apply, manager="kubectl-edit")
            self.operator.update(change)

    @rule(text=OVERRIDE_TEXTS)
    def edit_overrides(self, text: str) -> None:
        self._edit({OVERRIDES_KEY: text})

    @rule(key=FOREIGN_KEYS, value=st.sampled_from(["x", "y: 1\n", '{"a": 1}']))
    def edit_foreign_key(self, key: str, value: str) -> None:
        self._edit({key: value})

    @rule()
    def edit_a_generated_key(self) -> None:
        stored = self.api.get("configmaps", NAMESPACE, NAME)
        if stored is not None and "custom_toolset.yaml" in stored.get("data", {}):
            self.api.modify(
                "configmaps",
                NAMESPACE,
                NAME,
                lambda o: o["data"].update({"custom_toolset.yaml": "edited by hand\n"}),
            )

    @rule()
    def delete_configmap(self) -> None:
        if self.api.get("configmaps", NAMESPACE, NAME) is not None:
            self.api.delete("configmaps", NAMESPACE, NAME)
            self.operator.clear()  # deleting it is the operator's own choice

    # -- faults ---------------------------------------------------------------------------

    @rule(fault=FAULTS)
    def inject(self, fault: str) -> None:
        api = self.api
        if fault == "409-update":
            api.fail(409, reason="Conflict", verb="update", resource="configmaps", times=1)
        elif fault == "410-watch":
            api.expire_watches()
        elif fault == "500-get":
            api.fail(500, verb="get", resource="configmaps", times=1)
        elif fault == "500-update":
            api.fail(500, verb="update", resource="configmaps", times=1)
        elif fault == "429-create":
            api.fail(429, retry_after=0, verb="create", resource="configmaps", times=1)
        elif fault == "drop-watch":
            api.drop(verb="watch", resource="services", after_events=0, times=1)
            api.expire_watches()
        else:
            api.fail(500, verb="list", resource="services", times=1)
            api.expire_watches()

    # -- after every step ---------------------------------------------------------------------

    @invariant()
    def converges_and_keeps_operator_data(self) -> None:
        # A write, a watch event or a fault may still be on its way: wait, generously.
        # Nothing nudges the reconciler: its own triggers must get it there.
        wait_for(self.stack.converged, timeout=20.0, what="convergence")
        stored = self.api.get("configmaps", NAMESPACE, NAME)
        assert stored is not None
        for key, value in self.operator.items():
            assert stored["data"].get(key) == value, f"operator's {key} changed"


ControllerMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("DYNTOOLSET_STATEFUL_EXAMPLES", "6")),
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestController = ControllerMachine.TestCase
