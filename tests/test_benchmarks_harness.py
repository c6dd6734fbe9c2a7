"""The benchmark harness's own rules: targets, the table, alternation, a failing workload."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import run as runner  # noqa: E402
from benchmarks.harness import Figure, alternate, at_least, at_most, below, info, run_process  # noqa: E402


def test_targets_decide_pass_and_ratio():
    assert at_most("x", 1.5, 2.0, "x").passed is True
    assert at_most("x", 2.5, 2.0, "x").passed is False
    assert at_least("rate", 250_000, 200_000, "/s").passed is True
    assert at_least("rate", 150_000, 200_000, "/s").ratio == pytest.approx(0.75)
    assert below("wall", 6.0, 6.0, "s").passed is False
    assert info("rss", 12, "MiB").passed is None and info("rss", 12, "MiB").ratio is None


def test_figure_round_trips_through_json_dict():
    figure = at_most("x", 1.5, 2.0, "x", "notes")
    assert Figure.from_dict(figure.to_dict()) == figure


def test_alternate_interleaves_the_sides():
    calls: list[str] = []
    results = alternate(
        {"a": lambda: calls.append("a") or 1.0, "b": lambda: calls.append("b") or 2.0}, 3
    )
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert results == {"a": [1.0] * 3, "b": [2.0] * 3}


def test_table_has_a_row_per_figure_with_result():
    text = runner.table([("1 x", at_most("ratio", 3.0, 2.0, "x")), ("1 x", info("wall", 1.0, "s"))])
    lines = text.splitlines()
    assert lines[0].split(" | ")[0].strip() == "workload"
    assert lines[2].rstrip().endswith("MISS") and "1.50" in lines[2]
    assert lines[3].rstrip().endswith("-")


def test_run_process_reports_a_failing_command():
    with pytest.raises(RuntimeError, match="exited 3: boom"):
        run_process([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])


def test_a_failing_workload_is_a_failed_row_and_exit_status_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runner, "workloads", lambda: ["wl_99_missing"])
    assert runner.main(["--out", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    assert "wl_99_missing FAILED" in out
    assert out.rstrip().splitlines()[-1].rstrip().endswith("MISS")
