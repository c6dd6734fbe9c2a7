"""HolmesGPT loads everything: the check behind ``nox -s holmes``.

Runs in an environment with dyntoolset and every package of ``plugins/``
installed. It proves, for the example cluster (``examples/cluster/``):

1. every plugin distribution of ``plugins/`` loads (no load failure at all),
   and each of its detectors finds at least one Service of the example;
2. ``dyntoolset discover -f examples/cluster -o holmesgpt`` loads in HolmesGPT
   0.45's ``ToolsetManager`` (``tests/render/holmes_probe.py``, run by the
   HolmesGPT interpreter given as the first argument) with zero invalid
   toolsets, zero config errors, every toolset enabled;
3. the toolsets and the URLs HolmesGPT holds are exactly those of
   ``examples/holmes-expected.yaml``.

Usage: python scripts/holmes_check.py HOLMES_PYTHON. Exit 0, or 1 with every
problem listed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cluster"
EXPECTED = ROOT / "examples" / "holmes-expected.yaml"
PROBE = ROOT / "tests" / "render" / "holmes_probe.py"


def plugin_distributions() -> list[str]:
    """The distribution names of the packages in ``plugins/``."""
    names = []
    for pyproject in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        with pyproject.open("rb") as handle:
            names.append(str(tomllib.load(handle)["project"]["name"]))
    return names


def plugin_problems() -> list[str]:
    """Every plugin loads, and each plugin's detectors find something in the example."""
    from dyntoolset import Engine, read_manifests, service_from_object
    from dyntoolset.plugins import normalize

    engine = Engine.load()
    problems = [f"plugin failed to load: {failure}" for failure in engine.plugins.failures]
    report = read_manifests([str(EXAMPLE)])
    problems += [f"{EXAMPLE}: {error}" for error in report.errors]
    services = [service_from_object(o.obj) for o in report.objects if o.kind == "Service"]
    found = {d.detector for d in engine.discover(services).discovered}
    by_distribution: dict[str, list[str]] = {}
    for name, info in engine.plugins.detectors.items():
        by_distribution.setdefault(info.distribution, []).append(name)
    for distribution in plugin_distributions():
        detectors = by_distribution.get(normalize(distribution))
        if not detectors:
            problems.append(f"{distribution}: installed but registers no detector")
            continue
        for detector in sorted(detectors):
            if detector not in found:
                problems.append(
                    f"{distribution}: detector {detector!r} finds nothing in {EXAMPLE}; "
                    "add its Services there"
                )
    return problems


def discover_document() -> str:
    env = {k: v for k, v in os.environ.items() if k != "DYNTOOLSET_LOAD_PLUGINS"}
    result = subprocess.run(
        [sys.executable, "-m", "dyntoolset", "discover", "-f", str(EXAMPLE), "-o", "holmesgpt"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"dyntoolset discover failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def probe(
    holmes_python: str, document: str, container_location: str | None = None
) -> dict[str, Any]:
    """What HolmesGPT makes of ``document`` (``tests/render/holmes_probe.py``'s report).

    With ``container_location`` (an absolute path such as
    ``/etc/holmes/dyntoolset/custom_toolset.yaml``) the document is written at
    that path under a temporary root and HolmesGPT finds it through
    ``CUSTOM_TOOLSET_LOCATION``, as in its container; otherwise the path is
    handed to its ``ToolsetManager`` and its default location is kept empty.
    """
    with tempfile.TemporaryDirectory(prefix="holmes-check-") as tmp:
        if container_location is None:
            path = Path(tmp) / "custom_toolset.yaml"
            location, args = str(Path(tmp) / "absent.yaml"), []
        else:
            path = Path(tmp) / container_location.lstrip("/")
            location, args = str(path), ["--container"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(document, encoding="utf-8")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": tmp,  # keeps ~/.holmes of the machine out of it
            "CUSTOM_TOOLSET_LOCATION": location,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download at import time
            "NO_PROXY": "*",
        }
        result = subprocess.run(
            [holmes_python, str(PROBE), str(path), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
    if result.returncode != 0:
        sys.exit(f"HolmesGPT probe failed:\n{result.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def holmes_problems(report: dict[str, Any], expected: dict[str, list[str]]) -> list[str]:
    """What differs between what HolmesGPT loaded and ``expected`` (toolset -> URLs)."""
    problems = [f"invalid toolset {n}: {e}" for n, e in sorted(report["invalid"].items())]
    problems += [f"toolset {n} not loaded at all" for n in report["missing"]]
    problems += [f"config error in {n}: {e}" for n, e in sorted(report["config_errors"].items())]
    loaded = report["loaded"]
    for name, info in sorted(loaded.items()):
        if not info["enabled"]:
            problems.append(f"toolset {name} is not enabled ({info['status']}: {info['error']})")
    for name in sorted(set(loaded) - set(expected)):
        problems.append(f"unexpected toolset {name} (add it to {EXPECTED.name} if it is right)")
    for name in sorted(set(expected) - set(loaded)):
        problems.append(f"expected toolset {name} is missing")
    for name in sorted(set(expected) & set(loaded)):
        got, want = report["urls"].get(name, []), sorted(expected[name])
        if got != want:
            problems.append(f"{name}: HolmesGPT holds URLs {got}, expected {want}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.exit("usage: holmes_check.py HOLMES_PYTHON")
    expected = yaml.safe_load(EXPECTED.read_text(encoding="utf-8"))["toolsets"]
    problems = plugin_problems()
    report = probe(argv[1], discover_document())
    problems += holmes_problems(report, expected)
    if problems:
        print(f"holmes check: {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(
        f"holmes check: HolmesGPT loaded {len(report['loaded'])} toolsets from {EXAMPLE.name} "
        f"with the core and {', '.join(plugin_distributions())}: none invalid, URLs as expected"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
