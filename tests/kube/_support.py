"""Shared helpers of the controller tests: object bodies, waiting, fast timings."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

from dyntoolset.kube.client import Timeouts
from dyntoolset.kube.errors import Backoff

#: Timeouts for tests: short watches so reconnects happen within a test.
FAST = Timeouts(connect=2.0, read=5.0, watch_read=5.0, watch_seconds=30)

#: Generous: a wait that hits this is a failure, not a slow machine.
PATIENCE = 15.0


def fast_backoff() -> Backoff:
    """A backoff with the production shape but scaled down (10 ms doubling to 200 ms)."""
    return Backoff(0.01, 0.2, rng=random.Random(7))


def service(
    name: str,
    namespace: str = "default",
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    port: int = 80,
    port_name: str = "http",
) -> dict[str, Any]:
    """A Service body."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"ports": [{"name": port_name, "port": port}]},
    }


def prometheus(name: str = "prometheus", namespace: str = "monitoring") -> dict[str, Any]:
    """A Service the built-in Prometheus detector recognises."""
    return service(
        name,
        namespace,
        labels={"app.kubernetes.io/name": "prometheus"},
        port=9090,
        port_name="web",
    )


def wait_for(predicate: Callable[[], Any], timeout: float = PATIENCE, what: str = "") -> Any:
    """Poll ``predicate`` until truthy; fail the test (with ``what``) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


class Recorder:
    """A callback that records its calls and lets a test wait for the n-th."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, *args: Any) -> None:
        with self._cond:
            self.calls.append(args[0] if len(args) == 1 else args)
            self._cond.notify_all()

    def wait(self, count: int, timeout: float = PATIENCE) -> list[Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.calls) >= count, timeout):
                raise AssertionError(f"{len(self.calls)} calls, expected {count}: {self.calls}")
            return list(self.calls)
