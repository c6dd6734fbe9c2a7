"""Workload 7: idle, 10 resyncs with no change.

A running controller with 50,000 Services cached and its ConfigMap written,
then nothing changes; the resync interval is set to 0.5 s (the default is
300 s) so ten periodic reconciles come quickly. Targets: zero ConfigMap
writes; reported: the client CPU per resync (the whole idle period divided
by the resyncs: the reconciles themselves and whatever else the idle
controller does, such as watch bookmarks).
"""

from __future__ import annotations

import time

from benchmarks.harness import Figure, at_most, info
from benchmarks.live import Controller, Emulator, cluster_size
from dyntoolset.controller.reconciler import ReconcileOutcome

RESYNCS = 10
INTERVAL = 0.5


def run(quick: bool) -> list[Figure]:
    count = cluster_size(quick)
    wanted = 3 if quick else RESYNCS
    with Emulator(count) as emulator:
        controller = Controller(emulator.url, resync_interval=INTERVAL)
        try:
            controller.start()
            controller.wait_written()
            # The write's own echo on the ConfigMap watch is ignored; wait for the
            # first resync so the count starts from a quiet controller.
            controller.wait_for(lambda outs: outs[-1].reasons == ("resync",), 600)
            first = len(controller.outcomes)
            writes = emulator.writes()
            cpu = time.process_time()
            wall = time.perf_counter()

            def resyncs(outcomes: list[ReconcileOutcome]) -> int:
                return sum(o.reasons == ("resync",) for o in outcomes[first:])

            if not controller.wait_for(lambda outs: resyncs(outs) >= wanted, 900):
                raise RuntimeError(f"only {resyncs(controller.outcomes)} resyncs in 900 s")
            cpu = time.process_time() - cpu
            wall = time.perf_counter() - wall
            writes = emulator.writes() - writes
            outcomes = controller.outcomes[first:]
        finally:
            controller.stop()
    others = [o.reasons for o in outcomes if o.reasons != ("resync",)]
    results = sorted({o.result for o in outcomes})
    notes = f"{count:,} Services; resync every {INTERVAL} s; results {', '.join(results)}"
    if others:
        notes += f"; other reconciles: {others}"
    return [
        at_most(f"writes in {wanted} resyncs, nothing changed", writes, 0, "writes", notes),
        info("client CPU per resync", cpu / wanted, "s", f"{wall:.1f} s wall for {wanted} resyncs"),
    ]
