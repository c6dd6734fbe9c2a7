"""A small reader of Dockerfiles: instructions, stages, build arguments (what the tests need).

Not a full implementation of the Dockerfile grammar: line continuations,
comments, ``ARG NAME=default`` with optional quotes, ``FROM image [AS name]``,
exec-form JSON arguments and the ``--flag=value`` options of ``RUN``,
``COPY`` and ``FROM``. Anything else it meets is kept as raw text.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import attrs


@attrs.frozen
class Instruction:
    """One instruction: keyword (upper case), its options (``--mount=...``) and the rest."""

    keyword: str
    options: tuple[str, ...]
    text: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON array of ``ENTRYPOINT``/``CMD``; a shell form is an error."""
        value = json.loads(self.text)
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"line {self.line}: {self.keyword} is not a JSON array of strings")
        return value


@attrs.frozen
class Stage:
    """The instructions from one ``FROM`` to the next."""

    image: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[Instruction]:
        """The stage's instructions of ``keyword``, in order."""
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        """The one that takes effect (the last), or None."""
        found = self.all(keyword)
        return found[-1] if found else None

    def args(self) -> dict[str, str]:
        """``ARG`` defaults declared in this stage (without quotes)."""
        out: dict[str, str] = {}
        for i in self.all("ARG"):
            name, _, default = i.text.partition("=")
            out[name] = " ".join(shlex.split(default)) if default else ""
        return out


def instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comments inside a continued instruction are dropped too
        if not pending:
            start = number
        pending.append(line[:-1].strip() if line.endswith("\\") else line)
        if line.endswith("\\"):
            continue
        keyword, _, rest = " ".join(p for p in pending if p).partition(" ")
        pending = []
        options: list[str] = []
        rest = rest.strip()
        while rest.startswith("--"):
            option, _, rest = rest.partition(" ")
            options.append(option)
            rest = rest.strip()
        out.append(Instruction(keyword.upper(), tuple(options), rest, start))
    if pending:
        raise ValueError("the Dockerfile ends inside a continued line")
    return out


def stages(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """The global ``ARG`` defaults (before the first FROM) and the stages, in order."""
    global_args: dict[str, str] = {}
    result: list[Stage] = []
    current: list[Instruction] | None = None
    header: tuple[str, str | None] = ("", None)
    for ins in instructions(path.read_text()):
        if ins.keyword == "FROM":
            if current is not None:
                result.append(Stage(*header, tuple(current)))
            words = ins.text.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            header, current = (words[0], name), []
        elif current is None:
            if ins.keyword != "ARG":
                raise ValueError(f"line {ins.line}: {ins.keyword} before the first FROM")
            name, _, default = ins.text.partition("=")
            global_args[name] = default
        else:
            current.append(ins)
    if current is None:
        raise ValueError("no FROM")
    result.append(Stage(*header, tuple(current)))
    return global_args, result
