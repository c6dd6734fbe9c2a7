"""HolmesGPT 0.45 loads examples/holmesgpt/custom_toolset.yaml the way its container does.

The file must be exactly what ``dyntoolset discover -f examples/cluster -o
holmesgpt`` writes with the core and every package of ``plugins/`` (as in
``nox -s holmes``), and HolmesGPT must find it through
``CUSTOM_TOOLSET_LOCATION`` at the path examples/holmesgpt/values.yaml
mounts it, with no invalid toolset and the URLs of
examples/holmes-expected.yaml. The work is scripts/holmes_check.py's.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from test_holmesgpt_loads import holmes_python

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "holmesgpt"

pytestmark = pytest.mark.holmesgpt


def _holmes_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "holmes_check", ROOT / "scripts" / "holmes_check.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_toolset_file_is_what_dyntoolset_writes_and_holmesgpt_loads_it() -> None:
    check = _holmes_check()
    missing = [d for d in check.plugin_distributions() if not _installed(d)]
    assert not missing, (
        f"the example includes every plugin's toolsets; pip install ./plugins/... for {missing}"
    )
    document = check.discover_document()
    example = EXAMPLE / "custom_toolset.yaml"
    assert example.read_text(encoding="utf-8") == document, (
        f"{example} is stale: regenerate it with dyntoolset discover -f examples/cluster "
        "-o holmesgpt > examples/holmesgpt/custom_toolset.yaml (every plugin installed)"
    )
    values = yaml.safe_load((EXAMPLE / "values.yaml").read_text(encoding="utf-8"))
    env = {e["name"]: e["value"] for e in values["additionalEnvVars"]}
    report = check.probe(
        holmes_python(), document, container_location=env["CUSTOM_TOOLSET_LOCATION"]
    )
    expected = yaml.safe_load(check.EXPECTED.read_text(encoding="utf-8"))["toolsets"]
    assert check.holmes_problems(report, expected) == []
    assert sorted(report["loaded"]) == sorted(expected)


def _installed(distribution: str) -> bool:
    import importlib.metadata

    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True
