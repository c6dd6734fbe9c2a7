"""The benchmarks run: ``python -m benchmarks.run --quick`` produces figures for every workload.

Only that they run and report; no timing is checked here (speed is for
``nox -s bench``).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_workload_runs_quick_and_reports_figures(tmp_path):
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    modules = sorted(p.stem for p in (ROOT / "benchmarks").glob("wl_*.py"))
    assert modules, "no workload modules found"
    report = json.loads(out.read_text())
    assert report["quick"] is True
    assert report["machine"]["nproc"] >= 1 and report["machine"]["python"]
    assert sorted(report["workloads"]) == modules
    for module, entry in report["workloads"].items():
        assert entry["figures"], f"{module} reported no figure"
        assert entry["process"]["peak_rss_mib"] > 0
        for figure in entry["figures"]:
            assert figure["name"] and isinstance(figure["unit"], str)
            assert math.isfinite(figure["measured"]), (module, figure)
            assert figure["passed"] in (True, False, None)
            assert bool(figure["target"]) == (figure["passed"] is not None), (module, figure)
    # The output ends with the one table, a row per figure.
    lines = completed.stdout.rstrip().splitlines()
    figures = sum(len(entry["figures"]) for entry in report["workloads"].values())
    header = next(i for i, line in enumerate(lines) if line.startswith("workload "))
    assert len(lines) - header == figures + 2  # header and rule
    assert all(
        line.split(" | ")[-1].strip() in {"pass", "MISS", "-"} for line in lines[header + 2 :]
    )
