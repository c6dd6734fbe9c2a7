"""Workload 5: churn, 1,000 Service updates per second for 30 s (quick: 1 s).

A running controller with 50,000 Services cached; the emulator's own process
updates Services at the rate (through its store, so every update is a real
watch event to the controller, and the updates cost the client nothing):

* ``label``: a label no detector reads, on unrelated Services. The output
  does not change: the target is zero ConfigMap writes;
* ``toolset``: the ``kubernaut.io/toolset-health-path`` annotation of 20
  annotated (custom) Services, which their published toolsets carry: the
  output changes with every update, and the target is at most one write per
  debounce window (200 ms), plus the one a window still open at the end
  makes.

After each phase the controller is given time to catch up (its watch at the
emulator's last resourceVersion, no reconcile pending); the client CPU of the
whole phase, catching up included, is divided by the updates.
"""

from __future__ import annotations

import math
import time

from benchmarks.harness import Figure, at_most, info
from benchmarks.live import Controller, Emulator, cluster_size

RATE = 1_000.0
DEBOUNCE = 0.2


def _caught_up(controller: Controller, version: int, timeout: float) -> None:
    """Wait until the cache has seen ``version`` and the reconciler has nothing left to do."""
    deadline = time.monotonic() + timeout
    reflector = controller.cache.reflectors[0]
    while int(reflector.resource_version or 0) < version:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Service watch did not reach version {version}")
        time.sleep(0.05)
    # Idle twice, a debounce window apart: no trigger was still on its way (the
    # reconciler knows what is due or running, not what its watches have yet to say).
    reconciler = controller.reconciler
    while reconciler.wait_idle(max(0.0, deadline - time.monotonic())):
        time.sleep(DEBOUNCE * 2)
        if reconciler.idle:
            return
    raise RuntimeError("the reconciler did not settle after the churn")


def _phase(
    emulator: Emulator, controller: Controller, change: str, seconds: float
) -> dict[str, float]:
    writes = emulator.writes()
    reconciles = len(controller.outcomes)
    cpu = time.process_time()
    server = emulator.cpu()
    done = emulator.churn(RATE, seconds, change)
    _caught_up(controller, emulator.call("resource_version"), timeout=600)
    return {
        "updates": done["updates"],
        "rate": done["updates"] / done["seconds"],
        "seconds": done["seconds"],
        "cpu": time.process_time() - cpu,
        "server_cpu": emulator.cpu() - server,
        "writes": emulator.writes() - writes,
        "reconciles": len(controller.outcomes) - reconciles,
    }


def run(quick: bool) -> list[Figure]:
    count = cluster_size(quick)
    seconds = 1.0 if quick else 30.0
    # The watch may fall this far behind without a 410 (a relist would be a finding).
    with Emulator(count, history_limit=int(RATE * seconds) + 1_000) as emulator:
        controller = Controller(emulator.url, debounce=DEBOUNCE)
        try:
            controller.start()
            controller.wait_written()
            relists = controller.cache.relists
            label = _phase(emulator, controller, "label", seconds)
            toolset = _phase(emulator, controller, "toolset", seconds)
            relists = controller.cache.relists - relists
        finally:
            controller.stop()
        errors = emulator.server_errors()
    if errors:
        raise RuntimeError(f"the emulator failed while serving: {errors[0]}")
    windows = math.ceil(toolset["seconds"] / DEBOUNCE) + 1
    context = (
        f"{count:,} Services cached; {{rate:,.0f}} updates/s for {seconds:.0f} s; {{r}} reconciles"
    )
    return [
        at_most(
            "writes, output unchanged (labels)",
            label["writes"],
            0,
            "writes",
            context.format(rate=label["rate"], r=label["reconciles"]),
        ),
        at_most(
            "writes, output changing (toolsets)",
            toolset["writes"],
            windows,
            "writes",
            context.format(rate=toolset["rate"], r=toolset["reconciles"])
            + f"; {windows} debounce windows",
        ),
        info(
            "client CPU per event, labels",
            label["cpu"] / label["updates"] * 1e6,
            "us",
            f"{label['cpu']:.1f} s client CPU; emulator {label['server_cpu']:.1f} s",
        ),
        info(
            "client CPU per event, toolsets",
            toolset["cpu"] / toolset["updates"] * 1e6,
            "us",
            f"{toolset['cpu']:.1f} s client CPU; emulator {toolset['server_cpu']:.1f} s",
        ),
        info("updates/s achieved, labels", label["rate"], "/s", f"asked {RATE:,.0f}/s"),
        at_most("relists during the churn", relists, 0, "relists", "a 410 would force one"),
    ]
