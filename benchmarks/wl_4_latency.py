"""Workload 4: from a Service created through the API to the ConfigMap updated.

With 50,000 Services cached by a running controller (default debounce,
200 ms), each trial creates a Prometheus Service with a ``POST`` through the
official client and times until a client's own watch of the output
ConfigMap (a second connection, as an agent reading it would have) delivers
a version that names the new Service. Trials are spaced by a short random
pause so they do not lock onto the reconciler's rhythm.
"""

from __future__ import annotations

import random
import statistics
import time

from benchmarks.harness import Figure, below, info
from benchmarks.live import (
    ConfigMapObserver,
    Controller,
    Emulator,
    api_client,
    cluster_size,
    service,
)

NAMESPACE = "bench-latency"


def _percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile, nearest rank (the p99 of 100 trials is the 99th value)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run(quick: bool) -> list[Figure]:
    from kubernetes import client

    count = cluster_size(quick)
    trials = 3 if quick else 100
    rng = random.Random(4)
    latencies: list[float] = []
    with Emulator(count) as emulator:
        controller = Controller(emulator.url)
        observer = ConfigMapObserver(emulator.url)
        writer = api_client(emulator.url)
        core = client.CoreV1Api(writer)
        try:
            controller.start()
            controller.wait_written()
            observer.start()
            core.create_namespace({"metadata": {"name": NAMESPACE}}, _request_timeout=(5, 30))
            for trial in range(trials):
                time.sleep(rng.uniform(0.0, 0.1))
                name = f"latency-{trial}"
                after = len(observer.seen)
                started = time.perf_counter()
                core.create_namespaced_service(
                    NAMESPACE, service(name, NAMESPACE), _request_timeout=(5, 30)
                )
                arrived = observer.wait_for(f"{name}-prometheus.{NAMESPACE}.svc", after, timeout=60)
                if arrived is None:
                    raise RuntimeError(f"{name} never appeared in the ConfigMap")
                latencies.append(arrived - started)
        finally:
            observer.stop()
            controller.stop()
            writer.close()
        errors = emulator.server_errors()
    if errors:
        raise RuntimeError(f"the emulator failed while serving: {errors[0]}")
    p50 = statistics.median(latencies)
    p99 = _percentile(latencies, 0.99)
    notes = f"{trials} trials, {count:,} Services cached, debounce 0.2 s"
    return [
        below("p99 create to ConfigMap", p99, 1.0, "s", notes),
        info("p50 create to ConfigMap", p50, "s", notes),
        info("max create to ConfigMap", max(latencies), "s", notes),
    ]
