"""Run the benchmark workloads, each in a fresh process, and print one table.

``python -m benchmarks.run [--quick] [--only N ...] [--out PATH]`` (``nox -s
bench`` calls it from the repository root). Every module ``wl_<n>_<name>.py``
of this directory is a workload: its ``run(quick)`` returns
:class:`~benchmarks.harness.Figure` values. Each workload runs in a child
process of its own (``--child``), so its peak RSS and CPU time are not
inflated by another's; the child writes its figures as JSON to a file the
parent names, so whatever a workload prints cannot corrupt them.

The table ends the output; ``benchmarks/results.json`` (or ``--out``) holds
the same figures, the machine details and each workload's process costs.
The exit status is 1 when a workload failed to run (a missed target is a
finding, reported in the table, not a failure).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.harness import Figure, ProcessRun, run_process  # noqa: E402

WORKLOAD = re.compile(r"^wl_(\d+)_(\w+)\.py$")


def workloads() -> list[str]:
    """The workload module names, in the order of their number."""
    found = [(int(m.group(1)), p.stem) for p in HERE.iterdir() if (m := WORKLOAD.match(p.name))]
    return [name for _, name in sorted(found)]


def number_of(module: str) -> str:
    return module.split("_")[1]


def run_child(module: str, quick: bool, out: Path) -> None:
    """Inside the child: import and run one workload, write its figures to ``out``."""
    workload = importlib.import_module(f"benchmarks.{module}")
    figures = workload.run(quick)
    out.write_text(json.dumps([figure.to_dict() for figure in figures]))


def run_workload(module: str, quick: bool) -> tuple[list[Figure], ProcessRun | None, str]:
    """Run one workload in a fresh process: its figures, its costs, and an error text."""
    with tempfile.TemporaryDirectory(prefix="dyntoolset-bench-") as tmp:
        out = Path(tmp) / "figures.json"
        argv = [sys.executable, "-m", "benchmarks.run", "--child", module, "--out", str(out)]
        if quick:
            argv.append("--quick")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        try:
            process = run_process(argv, env=env)
        except RuntimeError as exc:
            return [], None, str(exc)
        figures = [Figure.from_dict(item) for item in json.loads(out.read_text())]
        return figures, process, ""


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _measured(figure: Figure) -> str:
    value = figure.measured
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return f"{text} {figure.unit}".strip()


def table(rows: list[tuple[str, Figure]]) -> str:
    """The one table: workload, figure, target, measured, ratio, pass/miss."""
    header = ("workload", "figure", "target", "measured", "ratio", "result")
    lines = [header]
    for workload, figure in rows:
        ratio = figure.ratio
        result = {True: "pass", False: "MISS", None: "-"}[figure.passed]
        lines.append(
            (
                workload,
                figure.name,
                figure.target or "-",
                _measured(figure),
                f"{ratio:.2f}" if ratio is not None else "-",
                result,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [
        " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in lines
    ]
    rendered.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(rendered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: checks the workloads run"
    )
    parser.add_argument(
        "--only", nargs="*", default=[], metavar="N", help="workload numbers to run"
    )
    parser.add_argument(
        "--out", type=Path, default=HERE / "results.json", help="where to write the JSON"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        run_child(args.child, args.quick, args.out)
        return 0

    selected = [m for m in workloads() if not args.only or number_of(m) in args.only]
    rows: list[tuple[str, Figure]] = []
    report: dict[str, Any] = {"machine": machine(), "quick": args.quick, "workloads": {}}
    failed = False
    for module in selected:
        print(f"running {module}{' (quick)' if args.quick else ''} ...", flush=True)
        start = time.perf_counter()
        figures, process, error = run_workload(module, args.quick)
        entry: dict[str, Any] = {"figures": [f.to_dict() for f in figures]}
        if process is not None:
            entry["process"] = {
                "wall_s": process.wall,
                "cpu_s": process.cpu,
                "peak_rss_mib": process.peak_rss_mib,
            }
            print(
                f"  {module}: {process.wall:.1f} s wall, {process.cpu:.1f} s CPU, "
                f"peak RSS {process.peak_rss_mib:.0f} MiB",
                flush=True,
            )
        else:
            failed = True
            entry["error"] = error
            print(
                f"  {module} FAILED after {time.perf_counter() - start:.1f} s:\n{error}", flush=True
            )
            figures = [Figure("workload ran", 0, "", "runs", False, "failed: see the output above")]
        report["workloads"][module] = entry
        rows.extend(
            (f"{number_of(module)} {module.split('_', 2)[2]}", figure) for figure in figures
        )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.exit(130)
