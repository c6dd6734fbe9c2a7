"""Workload 3: the initial sync of 50,000 Services from the API emulator.

Ours: the controller's paginated list (raw JSON) → snapshots → discovery
(every installed detector) → the ConfigMap written. The naive side: the same
paginated list through the official client's typed models
(``CoreV1Api.list_service_for_all_namespaces``, deserialised) kept as the
cache, with no discovery and no write at all, so the ratio is conservative.

Each side runs in a fresh interpreter (``benchmarks/live.py sync``) against
one emulator process, alternating the sides: its client CPU
(``time.process_time()``, imports and plugin loading excluded) and its peak
RSS are its own. Retained memory per cached Service comes from one more run
per side with ``tracemalloc`` (which slows it, so those runs are not timed;
quick mode traces its only run).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.harness import Figure, alternate, at_least, at_most, info, median
from benchmarks.live import Emulator, cluster_size

LIVE = Path(__file__).resolve().parent / "live.py"


def _sync(url: str, side: str, memory: bool = False) -> dict[str, Any]:
    argv = [sys.executable, str(LIVE), "sync", "--side", side, "--url", url]
    if memory:
        argv.append("--memory")
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"{side} sync failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> list[Figure]:
    count = cluster_size(quick)
    runs = 1 if quick else 3
    with Emulator(count) as emulator:
        results: dict[str, list[dict[str, Any]]] = {"ours": [], "typed": []}

        def side(name: str) -> Any:
            def one() -> float:
                emulator.delete_output()  # every sync of ours creates it
                result = _sync(emulator.url, name, memory=quick)
                if result["count"] != count:
                    raise RuntimeError(f"{name} cached {result['count']} of {count} Services")
                results[name].append(result)
                return float(result["cpu"])

            return one

        cpu = alternate({"ours": side("ours"), "typed": side("typed")}, runs)
        if quick:  # one traced run per side: figures, not measurements
            memory = {name: results[name][0] for name in results}
        else:
            emulator.delete_output()
            memory = {name: _sync(emulator.url, name, memory=True) for name in results}
        errors = emulator.server_errors()
    if errors:
        raise RuntimeError(f"the emulator failed while serving: {errors[0]}")
    ours_cpu, typed_cpu = median(cpu["ours"]), median(cpu["typed"])
    listed = median([r["cpu_synced"] for r in results["ours"]])
    per_service = {name: memory[name]["retained_bytes"] / count for name in memory}
    peak = {name: median([r["peak_rss_mib"] for r in results[name]]) for name in results}
    wall = {name: median([r["wall"] for r in results[name]]) for name in results}
    n = f"{count:,} Services, median of {runs}"
    return [
        at_least(
            "client CPU, typed list / ours",
            typed_cpu / ours_cpu,
            3.0,
            "x",
            f"ours {ours_cpu:.2f} s (list to ConfigMap), typed {typed_cpu:.2f} s (list only); {n}",
        ),
        at_most(
            "memory per cached Service, ours / typed",
            per_service["ours"] / per_service["typed"],
            1 / 3,
            "x",
            f"retained (tracemalloc): ours {per_service['ours']:.0f} B, "
            f"typed {per_service['typed']:.0f} B per Service",
        ),
        info(
            "client CPU, typed list / our list and snapshots",
            typed_cpu / listed,
            "x",
            f"ours {listed:.2f} s until the cache is synced; discovery and the write are the rest",
        ),
        info(
            "initial sync wall time, ours",
            wall["ours"],
            "s",
            f"typed list {wall['typed']:.1f} s; {n}",
        ),
        info("peak RSS, ours", peak["ours"], "MiB", f"whole client process; {n}"),
        info("peak RSS, typed", peak["typed"], "MiB", f"whole client process; {n}"),
    ]
