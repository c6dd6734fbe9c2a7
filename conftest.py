"""What a plain ``pytest`` does in a development install (see CONTRIBUTING.md).

``pip install -e '.[test]'`` gives the library and pytest, not the things some
tests need from outside: the example plugins under ``plugins/``, Debian's
Prometheus binaries, a separate HolmesGPT virtualenv. A plain ``pytest`` then
passes, and says exactly what each left-out part needs:

* a plugin's tests are not collected when its distribution is not installed
  (listed at the end of the run with the ``pip install`` command);
* tests marked with a requirement below are skipped, with the install
  command as the reason (shown by ``-ra``).

``pytest --require-integration`` (what ``nox -s tests`` and CI run) turns
both into failures: there, a missing dependency must never pass unnoticed.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

# The emulator's fixtures (apiserver, ...) for tests/ and for plugins' tests alike.
pytest_plugins = ["dyntoolset.testing.pytest_plugin"]

ROOT = Path(__file__).parent
PLUGINS = ROOT / "plugins"
STRICT = "--require-integration"


@attrs.frozen
class Requirement:
    """What tests carrying the marker ``marker`` need from outside Python."""

    marker: str
    needs: str
    met: Callable[[], bool]
    install: str


REQUIREMENTS = (
    Requirement(
        "holmesgpt",
        "an interpreter with HolmesGPT 0.45 in DYNTOOLSET_HOLMES_PYTHON",
        lambda: bool(os.environ.get("DYNTOOLSET_HOLMES_PYTHON")),
        'export DYNTOOLSET_HOLMES_PYTHON="$(scripts/holmes-venv.sh)"',
    ),
    Requirement(
        "browser",
        "Chromium (headless) for the status page",
        lambda: bool(shutil.which("chromium") or shutil.which("chromium-browser")),
        "sudo apt-get install --no-install-recommends chromium",
    ),
    Requirement(
        "integration",
        "the prometheus and prometheus-alertmanager binaries",
        lambda: all(shutil.which(b) for b in ("prometheus", "prometheus-alertmanager")),
        "sudo apt-get install --no-install-recommends prometheus prometheus-alertmanager",
    ),
)

#: Plugin test directories left out of this run: (directory, pip command).
_NOT_COLLECTED: list[tuple[str, str]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        STRICT,
        action="store_true",
        help="fail, instead of leaving out, tests whose plugin or external dependency "
        "is missing (nox -s tests and CI use it)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for requirement in REQUIREMENTS:
        config.addinivalue_line(
            "markers",
            f"{requirement.marker}: needs {requirement.needs} "
            f"(skipped without it unless {STRICT}; see conftest.py)",
        )


def _distribution_name(plugin: Path) -> str:
    with (plugin / "pyproject.toml").open("rb") as file:
        name: str = tomllib.load(file)["project"]["name"]
    return name


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave out the tests of a plugin whose distribution is not installed."""
    if collection_path.parent != PLUGINS or not (collection_path / "pyproject.toml").exists():
        return None
    distribution = _distribution_name(collection_path)
    if _installed(distribution):
        return None
    command = f"pip install -e {collection_path.relative_to(ROOT)}"
    if config.getoption(STRICT):
        raise pytest.UsageError(
            f"{distribution} is not installed, so its tests in "
            f"{collection_path.relative_to(ROOT)} cannot run: {command}"
        )
    _NOT_COLLECTED.append((str(collection_path.relative_to(ROOT)), command))
    return True


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test whose marked requirement is missing, saying how to install it."""
    if item.config.getoption(STRICT):
        return  # the test runs and fails with its own message
    for requirement in REQUIREMENTS:
        if item.get_closest_marker(requirement.marker) and not requirement.met():
            pytest.skip(f"needs {requirement.needs}: {requirement.install}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for directory, command in _NOT_COLLECTED:
        terminalreporter.write_line(
            f"not collected: {directory} (its distribution is not installed: {command})",
            yellow=True,
        )
