"""Workload 1: offline ``dyntoolset discover -f services.json``, whole process.

Compared side by side with the least any tool must do with the same file: a
``python -c 'json.load(...)'`` process. Both sides are full interpreter
processes (start-up, imports, reading, parsing), run alternately; the figure
is the ratio of their median CPU times (user + system, from ``wait4``: both
are single-threaded, and on a shared machine their wall times also count
other processes' turns). The wall-time ratio is reported too. Target: at
most 2x.
"""

from __future__ import annotations

import sys

from benchmarks.cluster import cached_service_list
from benchmarks.harness import Figure, alternate, at_most, info, median, run_process

JSON_LOAD = "import json, sys\nwith open(sys.argv[1], 'rb') as f: json.load(f)"


def run(quick: bool) -> list[Figure]:
    count = 500 if quick else 50_000
    runs = 1 if quick else 5
    path = cached_service_list(count)
    size_mb = path.stat().st_size / 1e6
    discover = [sys.executable, "-m", "dyntoolset", "discover", "-f", str(path)]
    json_load = [sys.executable, "-c", JSON_LOAD, str(path)]
    peaks: dict[str, float] = {}
    walls: dict[str, list[float]] = {"discover": [], "json.load": []}

    def side(name: str, argv: list[str]):  # type: ignore[no-untyped-def]
        def once() -> float:
            process = run_process(argv)
            peaks[name] = max(peaks.get(name, 0.0), process.peak_rss_mib)
            walls[name].append(process.wall)
            return process.cpu

        return once

    cpu = alternate(
        {"discover": side("discover", discover), "json.load": side("json.load", json_load)}, runs
    )
    ours, bare = median(cpu["discover"]), median(cpu["json.load"])
    wall_ratio = median(walls["discover"]) / median(walls["json.load"])
    notes = f"{count} Services, {size_mb:.0f} MB, CPU time, median of {runs} alternating runs"
    return [
        at_most("discover / json.load, whole process", ours / bare, 2.0, "x", notes),
        info("discover / json.load, wall time", wall_ratio, "x", "noisy on a shared machine"),
        info("discover CPU time", ours, "s", f"peak RSS {peaks['discover']:.0f} MiB"),
        info("json.load CPU time", bare, "s", f"peak RSS {peaks['json.load']:.0f} MiB"),
    ]
