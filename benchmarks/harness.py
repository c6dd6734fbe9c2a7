"""What every workload module shares: the :class:`Figure` it reports and how to measure.

A workload is a module ``benchmarks/wl_<n>_<name>.py`` with a function
``run(quick: bool) -> list[Figure]``. :mod:`benchmarks.run` runs each one in a
fresh Python process, so the peak RSS and CPU time a workload reads with
:func:`peak_rss_mib` and :func:`cpu_seconds` are its own.

The machines are noisy and have two shared cores: report medians of repeated
runs, and measure a ratio by running both sides in the same process,
alternating them (:func:`alternate`), never against a number from another run.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Figure:
    """One measured figure of a workload, with its target.

    ``target`` is the text shown in the table (``"<= 2x"``, ``">= 200000/s"``);
    ``passed`` is ``None`` for figures reported without a target (context such
    as the naive side of a comparison or a peak RSS). ``limit`` is the number in
    the target, when there is one: the table's ratio column is
    ``measured / limit``.
    """

    name: str
    measured: float
    unit: str
    target: str = ""
    passed: bool | None = None
    notes: str = ""
    limit: float | None = None

    @property
    def ratio(self) -> float | None:
        """``measured / limit``, or ``None`` without a numeric target."""
        if self.limit in (None, 0):
            return None
        return self.measured / self.limit  # type: ignore[operator]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Figure:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def at_most(name: str, measured: float, limit: float, unit: str, notes: str = "") -> Figure:
    """A figure whose target is ``measured <= limit``."""
    return Figure(
        name, measured, unit, f"<= {_number(limit)} {unit}".strip(), measured <= limit, notes, limit
    )


def at_least(name: str, measured: float, limit: float, unit: str, notes: str = "") -> Figure:
    """A figure whose target is ``measured >= limit``."""
    return Figure(
        name, measured, unit, f">= {_number(limit)} {unit}".strip(), measured >= limit, notes, limit
    )


def below(name: str, measured: float, limit: float, unit: str, notes: str = "") -> Figure:
    """A figure whose target is ``measured < limit`` (strictly)."""
    return Figure(
        name, measured, unit, f"< {_number(limit)} {unit}".strip(), measured < limit, notes, limit
    )


def info(name: str, measured: float, unit: str, notes: str = "") -> Figure:
    """A figure reported for context, without a target."""
    return Figure(name, measured, unit, "", None, notes)


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:,.0f}"


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (at least one)."""
    return float(statistics.median(values))


def cpu_seconds() -> float:
    """CPU time (user + system) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu_seconds() -> float:
    """CPU time (user + system) of this process's waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib() -> float:
    """The peak resident set size of this process, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclasses.dataclass(frozen=True)
class ProcessRun:
    """What one subprocess cost: wall time, CPU time and peak RSS (MiB)."""

    wall: float
    cpu: float
    peak_rss_mib: float
    returncode: int


def run_process(
    argv: Sequence[str],
    *,
    stdin_path: str | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> ProcessRun:
    """Run ``argv`` to completion, output discarded, and measure it with ``wait4``."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
        )
        assert process.stderr is not None
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdin_path:
            stdin.close()  # type: ignore[union-attr]
    if check and process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {process.returncode}: {stderr.decode(errors='replace')[-2000:]}"
        )
    return ProcessRun(
        wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode
    )


def alternate(sides: Mapping[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """Run each side ``runs`` times, interleaved (A B, B A, A B ...), and collect what they return.

    Alternating the order of each round spreads a slow phase of the machine
    over both sides, so their ratio is fair even on a noisy host.
    """
    names = list(sides)
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(runs):
        for name in names if round_ % 2 == 0 else reversed(names):
            results[name].append(sides[name]())
    return results


def timed(function: Callable[[], object]) -> float:
    """Wall time of one call of ``function``, in seconds."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def cpu_timed(function: Callable[[], object]) -> float:
    """CPU time of this process during one call of ``function``, in seconds.

    For single-threaded work on a shared machine: the wall time also counts
    the time other processes had the core, the CPU time does not.
    """
    # process_time() reads CLOCK_PROCESS_CPUTIME_ID, exact to the
    # nanosecond; getrusage's user and system times may move in scheduler
    # ticks, a few per cent of a 0.2 s call.
    gc.collect()  # no collection of earlier garbage inside the call
    start = time.process_time()
    function()
    return time.process_time() - start


def python() -> str:
    """The interpreter running the benchmarks (children use the same one)."""
    return sys.executable
