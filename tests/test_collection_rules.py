"""The repository's conftest.py: what a plain ``pytest`` leaves out, and that
``--require-integration`` (nox, CI) leaves out nothing.

Each test builds a small project around a copy of that conftest.py and runs
pytest on it in-process.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT_CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"
NOT_INSTALLED = "dyntoolset-test-surely-not-installed"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with an uninstalled plugin, a HolmesGPT test and an ordinary test."""
    monkeypatch.delenv("DYNTOOLSET_HOLMES_PYTHON", raising=False)
    pytester.makeconftest(ROOT_CONFTEST.read_text(encoding="utf-8"))
    plugin = pytester.mkdir("plugins") / "fake-plugin"
    (plugin / "tests").mkdir(parents=True)
    (plugin / "pyproject.toml").write_text(f'[project]\nname = "{NOT_INSTALLED}"\n')
    (plugin / "tests" / "test_plugin.py").write_text(
        "import fake_plugin_module_that_does_not_exist\n\ndef test_plugin():\n    pass\n"
    )
    pytester.makepyfile(
        test_core="def test_core():\n    assert True\n",
        test_holmes=(
            "import os, pytest\n\n"
            "@pytest.mark.holmesgpt\n"
            "def test_loads():\n"
            "    if not os.environ.get('DYNTOOLSET_HOLMES_PYTHON'):\n"
            "        pytest.fail('DYNTOOLSET_HOLMES_PYTHON is not set')\n"
        ),
    )
    return pytester


def test_a_plain_run_passes_and_says_what_it_left_out(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess("-ra", "-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "not collected: plugins/fake-plugin (its distribution is not installed: "
            "pip install -e plugins/fake-plugin)",
            "SKIPPED*needs an interpreter with HolmesGPT 0.45 in DYNTOOLSET_HOLMES_PYTHON: "
            'export DYNTOOLSET_HOLMES_PYTHON="$(scripts/holmes-venv.sh)"',
        ]
    )


def test_require_integration_fails_on_a_missing_plugin(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess("--require-integration", "-p", "no:cacheprovider")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [f"*{NOT_INSTALLED} is not installed, so its tests in plugins/fake-plugin cannot run*"]
    )


def test_require_integration_runs_what_a_plain_run_skips(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess(
        "--require-integration", "-p", "no:cacheprovider", "test_core.py", "test_holmes.py"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*DYNTOOLSET_HOLMES_PYTHON is not set*"])


def test_an_installed_plugin_is_collected(project: pytest.Pytester) -> None:
    pyproject = project.path / "plugins" / "fake-plugin" / "pyproject.toml"
    pyproject.write_text('[project]\nname = "dyntoolset"\n')  # installed: this project
    result = project.runpytest_inprocess("-p", "no:cacheprovider")
    # Collected (and failing on its import), not left out.
    result.stdout.fnmatch_lines(["*ModuleNotFoundError*fake_plugin_module_that_does_not_exist*"])
    result.stdout.no_fnmatch_line("not collected:*")
