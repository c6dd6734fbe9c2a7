"""Developer tasks: ``nox -s tests`` (the full suite), ``lint``, ``typecheck``, ``holmes``, ``bench``.

Every package of ``plugins/`` is installed (editable) in each session, its
tests run with the suite (pytest's testpaths include ``plugins``), and its
sources are type-checked with the core's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "holmes"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PLUGINS = sorted(str(p) for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())


def install_project(session: nox.Session, *extras: str) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec, *(arg for p in PLUGINS for arg in ("-e", p)))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite, including the integration tests with real Prometheus and HolmesGPT.

    scripts/test-deps.sh installs what the integration tests need outside
    Python (Debian's prometheus packages, a HolmesGPT venv) when it is missing.
    """
    install_project(session, "test")
    holmes = session.run("bash", "scripts/test-deps.sh", external=True, silent=True)
    env = {"DYNTOOLSET_HOLMES_PYTHON": str(holmes).strip().splitlines()[-1]}
    # Say which kubectl the emulator's kubectl suite runs (tests/apiserver/conftest.py
    # picks $KUBECTL, else the one on PATH); without one that suite is skipped,
    # which DYNTOOLSET_REQUIRE_KUBECTL=1 (set by .ci/run) turns into a failure.
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if kubectl:
        session.log(f"kubectl for the API emulator's kubectl suite: {kubectl}")
        session.run(kubectl, "version", "--client", external=True)
    else:
        session.log("no kubectl found: the API emulator's kubectl suite will be skipped")
    # --require-integration: a missing plugin, binary or HolmesGPT fails the run
    # instead of being left out as in a plain `pytest` (conftest.py).
    session.run("pytest", "--require-integration", *(session.posargs or ["-q"]), env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format) and the import layering contracts."""
    install_project(session)
    session.install("ruff", "import-linter")
    paths = ["src", "tests", "plugins", "benchmarks", "noxfile.py", "conftest.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the library (its testing kit imports pytest) and on each plugin's src."""
    install_project(session, "test")
    session.install("mypy", "types-PyYAML")
    session.run("mypy")
    for plugin in PLUGINS:
        # One run per plugin: their packages are separate top-level modules,
        # and each must type-check against the installed dyntoolset alone.
        session.run("mypy", "--strict", str(Path(plugin) / "src"))


@nox.session
def holmes(session: nox.Session) -> None:
    """HolmesGPT 0.45 loads the output for examples/cluster/ with the core and every plugin.

    Builds (or reuses) the HolmesGPT virtualenv with scripts/holmes-venv.sh;
    scripts/holmes_check.py asserts zero invalid toolsets and the URLs of
    examples/holmes-expected.yaml, and that every plugin loads and finds something.
    """
    install_project(session)
    holmes_python = session.run("bash", "scripts/holmes-venv.sh", external=True, silent=True)
    session.run("python", "scripts/holmes_check.py", str(holmes_python).strip().splitlines()[-1])


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite of issue 15 (``benchmarks/``): every workload, then one table.

    Each workload runs in a process of its own; ratios are measured side by
    side within one run. ``nox -s bench -- --quick`` for small sizes,
    ``-- --only 1 6`` for some workloads. Figures go to ``benchmarks/results.json``.
    """
    install_project(session, "test")
    session.run(
        "python",
        "-m",
        "benchmarks.run",
        *session.posargs,
        env={"PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")},
    )
