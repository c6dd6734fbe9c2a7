"""The commands of docs/getting-started.md work as shown.

A fenced ``console`` block preceded by a ``<!-- tested -->`` line is run:
each ``$ `` line is a shell command (run by bash from a scratch directory
where ``examples/`` is the repository's, with this interpreter's scripts
first on PATH); the lines after it are its expected output, stdout and
stderr together. Expected lines must appear in order: ``...`` alone skips
any lines, a line ending in ``...`` matches any output line starting with
what precedes it. A command must exit 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "docs" / "getting-started.md"]
_BLOCK = re.compile(r"<!-- tested -->\n```console\n(.*?)```", re.DOTALL)


@attrs.frozen
class Command:
    line: int
    command: str
    expected: tuple[str, ...]


def commands_of(text: str) -> list[Command]:
    """Every command of the tested blocks of ``text``, with its expected output."""
    commands: list[Command] = []
    for block in _BLOCK.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        for offset, line in enumerate(block.group(1).splitlines()):
            if line.startswith("$ "):
                commands.append(Command(first + offset, line[2:], ()))
            elif commands:
                last = commands[-1]
                commands[-1] = attrs.evolve(last, expected=(*last.expected, line))
            else:
                raise AssertionError(f"line {first + offset}: output before any command")
    return commands


def output_problem(expected: tuple[str, ...], output: str) -> str | None:
    """Why ``output`` does not show ``expected`` (see the module docstring), or ``None``."""
    lines = output.splitlines()
    position, skipping = 0, False
    for want in expected:
        if want == "...":
            skipping = True
            continue
        prefix = want[:-3] if want.endswith("...") else None
        while position < len(lines):
            got = lines[position]
            position += 1
            if got == want or (prefix is not None and got.startswith(prefix)):
                break
            if not skipping:
                return f"expected {want!r}, got {got!r}"
        else:
            return f"expected {want!r}, output ended"
        skipping = False
    return None


def _cases() -> list[tuple[Path, list[Command]]]:
    return [(page, commands_of(page.read_text(encoding="utf-8"))) for page in PAGES]


@pytest.mark.parametrize(("page", "commands"), _cases(), ids=lambda v: getattr(v, "name", ""))
def test_every_tested_command_runs_as_shown(
    page: Path, commands: list[Command], tmp_path: Path
) -> None:
    assert commands, f"{page} has no tested block"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DYNTOOLSET_LOAD_PLUGINS", None)
    for command in commands:  # in order: later ones read what earlier ones wrote
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command.command],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env, check=False,
        )  # fmt: skip
        where = f"{page.name}:{command.line}: $ {command.command}"
        assert result.returncode == 0, f"{where}\nexit {result.returncode}\n{result.stderr}"
        problem = output_problem(command.expected, result.stdout + result.stderr)
        assert problem is None, f"{where}\n{problem}\n--- output:\n{result.stdout}{result.stderr}"


def test_blocks_are_parsed_into_commands_and_their_output() -> None:
    text = "x\n<!-- tested -->\n```console\n$ a\none\n...\n$ b | c\n```\n```console\n$ not tested\n```\n"
    assert commands_of(text) == [Command(4, "a", ("one", "...")), Command(7, "b | c", ())]


def test_output_matching_keeps_order_and_understands_ellipses() -> None:
    output = "head\nmiddle 1\nmiddle 2\ntail line\n"
    assert output_problem(("head", "...", "tail line"), output) is None
    assert output_problem(("head", "middle...", "..."), output) is None
    assert output_problem(("...", "tail..."), output) is None
    assert output_problem(("head", "tail line"), output) == "expected 'tail line', got 'middle 1'"
    assert output_problem(("...", "tail line", "head"), output) == "expected 'head', output ended"
    assert output_problem(("head", "...", "absent"), output) == "expected 'absent', output ended"
