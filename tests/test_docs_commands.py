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

import contextlib
import io
import os
import re
import shlex
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


# -- every dyntoolset command shown anywhere in the docs parses ------------------

_FENCED = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
_COMMAND_LINE = re.compile(r"(^(\$ )?|[|;&]\s*)dyntoolset\s")
_STOP = {"|", "||", "&&", ";", "&", "<", ">", ">>", "<<", "(", ")"}


def dyntoolset_commands(text: str) -> list[list[str]]:
    """The arguments of every ``dyntoolset ...`` command in the fenced blocks of ``text``
    (after ``$ ``, at a line's start or after a pipe), up to a pipe, redirection or
    comment; usage notation in brackets (``config show [FILE]``) is left out."""
    commands = []
    for block in _FENCED.finditer(text):
        for line in block.group(1).replace("\\\n", " ").splitlines():
            if not _COMMAND_LINE.search(line):
                continue  # output or prose
            lexer = shlex.shlex(line.removeprefix("$ "), posix=True, punctuation_chars=True)
            lexer.commenters = "#"
            tokens = list(lexer)
            for index, token in enumerate(tokens):
                if token != "dyntoolset" or (index and tokens[index - 1] not in _STOP):
                    continue
                argv: list[str] = []
                optional = False  # inside usage notation: [FILE] is left out
                for arg in tokens[index + 1 :]:
                    if arg.startswith("[") or optional:
                        optional = not arg.endswith("]")
                        continue
                    if arg in _STOP:
                        if arg in {">", ">>", "<"} and argv and argv[-1].isdigit():
                            argv.pop()  # the 2 of 2>/dev/null
                        break
                    argv.append(arg)
                commands.append(argv)
    return commands


def parse_problem(argv: list[str]) -> str | None:
    """What ``dyntoolset``'s own argument parser says about ``argv``, or ``None``."""
    from dyntoolset.cli import _parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            _parser().parse_args(argv)
    except SystemExit as exit_:
        if exit_.code:
            return err.getvalue().strip().splitlines()[-1]
    return None


DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_dyntoolset_command_shown_parses_with_its_flags(page: Path) -> None:
    problems = [
        f"dyntoolset {shlex.join(argv)}: {problem}"
        for argv in dyntoolset_commands(page.read_text(encoding="utf-8"))
        if (problem := parse_problem(argv)) is not None
    ]
    assert problems == []


def test_commands_are_cut_at_pipes_and_redirections_and_bad_flags_are_caught() -> None:
    text = (
        "```sh\n$ dyntoolset discover -f x -o holmesgpt 2>/dev/null | head -4\n"
        "kubectl get svc -A -o json | dyntoolset discover -f - --nope   # a comment\n"
        "dyntoolset frobnicate < in.json\ndyntoolset config show [FILE]\n"
        "dyntoolset: error: output lines are not commands\n```\nnot code: dyntoolset --bad\n"
    )
    commands = dyntoolset_commands(text)
    assert commands == [
        ["discover", "-f", "x", "-o", "holmesgpt"],
        ["discover", "-f", "-", "--nope"],
        ["frobnicate"],
        ["config", "show"],
    ]
    assert parse_problem(commands[0]) is None
    assert "unrecognized arguments: --nope" in (parse_problem(commands[1]) or "")
    assert "invalid choice: 'frobnicate'" in (parse_problem(commands[2]) or "")
