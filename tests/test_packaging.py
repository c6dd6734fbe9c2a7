"""Packaging: the core and every plugin build a wheel and an sdist that install and work.

``python -m build --no-isolation`` (this environment's setuptools, so nothing
is downloaded) builds each project's sdist and then its wheel *from that
sdist*, so a file the sdist forgets breaks the wheel here as it would on a
user's machine. The builds run on a copy of the repository's files (tracked
and new, as git lists them) so that no build output lands in the checkout.

The wheels are then installed, without dependencies and from no index, into
a fresh venv that borrows this environment's dependencies (``tests/venvs.py``)
and smoke-tested through the installed console script. CONTRIBUTING.md
("Releasing") describes the same steps by hand.
"""

from __future__ import annotations

import email.message
import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from configparser import ConfigParser
from pathlib import Path

import pytest
import yaml

from dyntoolset.version import __version__
from tests.venvs import reuse_installed_dependencies

# Building nine projects twice (sdist, then wheel) and a venv: about 40 s on 2 busy cores.
pytestmark = pytest.mark.timeout(400)

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIRS = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
REPOSITORY = "https://github.com/dyntoolset/dyntoolset"
#: The classifiers every distribution declares (the core adds "Environment :: Console").
SHARED_CLASSIFIERS = {
    "Development Status :: 3 - Alpha",
    "Intended Audience :: Developers",
    "Intended Audience :: System Administrators",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Topic :: System :: Monitoring",
    "Typing :: Typed",
}
#: Files of the core's package that are not Python modules and must be in the wheel.
PACKAGE_DATA = (
    "dyntoolset/py.typed",
    "dyntoolset/dashboard/dyntoolset.json",
    *(
        f"dyntoolset/controller/status_page/{p.name}"
        for p in sorted((ROOT / "src/dyntoolset/controller/status_page").iterdir())
    ),
)


def pyproject(directory: Path) -> dict[str, object]:
    with (directory / "pyproject.toml").open("rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


def copy_sources(destination: Path) -> None:
    """The repository's files as a fresh clone plus uncommitted work would have them."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted but not yet committed is still listed
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def build(project: Path, out: Path) -> tuple[Path, Path]:
    """``python -m build --no-isolation``: the sdist, then the wheel from it."""
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"building {project.name} failed:\n{done.stdout}\n{done.stderr}"
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Every distribution's (sdist, wheel), by project name."""
    sources, dist = tmp_path_factory.mktemp("sources"), tmp_path_factory.mktemp("dist")
    copy_sources(sources)
    projects = [sources, *(sources / "plugins" / p.name for p in PLUGIN_DIRS)]
    return {
        str(pyproject(project)["name"]): build(project, dist / project.name) for project in projects
    }


@pytest.fixture(scope="module")
def venv(
    built: dict[str, tuple[Path, Path]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A fresh venv with every wheel installed, from no index and with no dependency resolution."""
    where = tmp_path_factory.mktemp("venv")
    environment = where / "env"
    reuse_installed_dependencies(environment, where / "dependencies")
    wheels = [str(wheel) for _, wheel in built.values()]
    python = environment / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    quiet = {"capture_output": True, "text": True, "check": False, "env": clean_env()}
    done = subprocess.run([*pip, "install", "--no-deps", "--no-index", *wheels], **quiet)
    assert done.returncode == 0, done.stdout + done.stderr
    # Every declared requirement (the plugins' dyntoolset>=0.1,<0.2 included) is met.
    check = subprocess.run([*pip, "check"], **quiet)
    assert check.returncode == 0, check.stdout + check.stderr
    yield environment


def clean_env() -> dict[str, str]:
    """This process's environment without what would point Python back at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command of the venv's bin/, run outside the checkout so nothing imports from it."""
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wheel_metadata(wheel: Path) -> tuple[email.message.Message, ConfigParser, list[str]]:
    """METADATA, entry_points.txt and the file names of a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        metadata = email.parser.BytesParser().parsebytes(archive.read(f"{info}/METADATA"))
        entry_points = ConfigParser(delimiters=("=",))
        entry_points.optionxform = str  # type: ignore[assignment,method-assign]
        entry_points.read_string(archive.read(f"{info}/entry_points.txt").decode())
    return metadata, entry_points, names


def sdist_names(sdist: Path) -> set[str]:
    """The sdist's members, without the top directory ``name-version/``."""
    with tarfile.open(sdist) as archive:
        return {m.name.partition("/")[2] for m in archive.getmembers() if m.isfile()}


def assert_common_metadata(metadata: email.message.Message, directory: Path) -> None:
    """What the core and every plugin declare alike: license, classifiers, URLs, Python."""
    name = metadata["Name"]
    assert metadata["License-Expression"] == "Apache-2.0", name
    assert metadata.get_all("License-File") == ["LICENSE"], name
    assert metadata["Requires-Python"] == ">=3.11", name
    assert set(metadata.get_all("Classifier") or []) >= SHARED_CLASSIFIERS, name
    assert not [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")], (
        "PEP 639: the license expression replaces License classifiers"
    )
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Changelog", "Issues"}, name
    assert urls["Homepage"] == REPOSITORY
    assert urls["Issues"] == f"{REPOSITORY}/issues"
    assert urls["Changelog"] == f"{REPOSITORY}/blob/main/CHANGELOG.md"
    # The documentation URL names a directory that exists in this repository.
    assert urls["Documentation"].startswith(f"{REPOSITORY}/tree/main/"), name
    assert (ROOT / urls["Documentation"].removeprefix(f"{REPOSITORY}/tree/main/")).is_dir()
    assert metadata["Description-Content-Type"] == "text/markdown"
    description = metadata.get_payload(decode=True)
    assert isinstance(description, bytes)
    assert description.decode() == (directory / "README.md").read_text(), "README as description"
    assert metadata["Keywords"], name


def test_every_distribution_carries_the_same_license_file() -> None:
    licence = (ROOT / "LICENSE").read_text()
    assert licence.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in licence, "the full text, not a notice"
    for plugin in PLUGIN_DIRS:
        assert (plugin / "LICENSE").read_text() == licence, plugin.name
        assert pyproject(plugin)["license"] == pyproject(ROOT)["license"] == "Apache-2.0"


def test_the_core_wheel_declares_its_metadata_and_entry_points(
    built: dict[str, tuple[Path, Path]],
) -> None:
    metadata, entry_points, names = wheel_metadata(built["dyntoolset"][1])
    assert (metadata["Name"], metadata["Version"]) == ("dyntoolset", __version__)
    assert_common_metadata(metadata, ROOT)
    assert "Environment :: Console" in metadata.get_all("Classifier")
    assert dict(entry_points["console_scripts"]) == {"dyntoolset": "dyntoolset.cli:main"}
    declared = pyproject(ROOT)["entry-points"]
    assert isinstance(declared, dict)
    assert dict(entry_points["dyntoolset"]) == declared["dyntoolset"]
    assert f"dyntoolset-{__version__}.dist-info/licenses/LICENSE" in names
    missing = [f for f in PACKAGE_DATA if f not in names]
    assert not missing, f"package data missing from the wheel: {missing}"
    # Only the library: no tests, no testing fixtures of the repository.
    assert {n.split("/")[0] for n in names} == {"dyntoolset", f"dyntoolset-{__version__}.dist-info"}


def test_the_core_sdist_has_the_sources_and_what_the_readme_links_to(
    built: dict[str, tuple[Path, Path]],
) -> None:
    names = sdist_names(built["dyntoolset"][0])
    for required in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "PKG-INFO"):
        assert required in names, required
    sources = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "src/dyntoolset").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert sources - names == set(), "every file of src/dyntoolset is in the sdist"
    # README.md's relative links resolve in the unpacked sdist.
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    assert links, "README.md links to the docs"
    unresolved = [
        link
        for link in links
        if link not in names and not any(n.startswith(f"{link.rstrip('/')}/") for n in names)
    ]
    assert not unresolved, f"README.md links missing from the sdist: {unresolved}"
    # The test suite runs from a checkout only; a partial copy would not run.
    assert not [n for n in names if n.startswith("tests/")]


@pytest.mark.parametrize("plugin", PLUGIN_DIRS, ids=lambda p: p.name)
def test_each_plugin_builds_with_the_cores_metadata(
    plugin: Path, built: dict[str, tuple[Path, Path]]
) -> None:
    declared = pyproject(plugin)
    sdist, wheel = built[str(declared["name"])]
    metadata, entry_points, names = wheel_metadata(wheel)
    assert_common_metadata(metadata, plugin)
    module = str(declared["name"]).replace("-", "_")
    assert f"{module}/py.typed" in names
    assert f"{module}-{declared['version']}.dist-info/licenses/LICENSE" in names
    entry_point = declared["entry-points"]
    assert isinstance(entry_point, dict)
    assert dict(entry_points["dyntoolset"]) == entry_point["dyntoolset"]
    assert any(r.startswith("dyntoolset") for r in metadata.get_all("Requires-Dist") or [])
    members = sdist_names(sdist)
    sources = {str(p.relative_to(plugin)) for p in (plugin / "src").rglob("*") if p.is_file()}
    sources = {s for s in sources if "__pycache__" not in s}
    assert {"LICENSE", "README.md", "pyproject.toml"} | sources <= members
    assert not [n for n in members if n.startswith("tests/")]


def test_the_installed_core_runs_from_the_venv(venv: Path, tmp_path: Path) -> None:
    version = run(venv, "dyntoolset", "--version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert __version__ in version.stdout
    probe = (
        "import dyntoolset, importlib.metadata, importlib.resources, json\n"
        "files = importlib.resources.files('dyntoolset')\n"
        "print(json.dumps({'file': dyntoolset.__file__,"
        " 'version': importlib.metadata.version('dyntoolset'),"
        " 'page': files.joinpath('controller/status_page/index.html').is_file()}))\n"
    )
    imported = run(venv, "python", "-c", probe, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    found = json.loads(imported.stdout)
    assert Path(found["file"]).is_relative_to(venv), "imported from the installed wheel"
    assert found["version"] == __version__
    assert found["page"] is True
    dashboard = run(venv, "dyntoolset", "dashboard", cwd=tmp_path)
    assert dashboard.returncode == 0, dashboard.stderr
    shipped = json.loads((ROOT / "src/dyntoolset/dashboard/dyntoolset.json").read_text())
    assert json.loads(dashboard.stdout) == shipped


def test_the_installed_core_discovers_the_example_cluster(venv: Path, tmp_path: Path) -> None:
    discovered = run(
        venv, "dyntoolset", "discover", "-f", str(ROOT / "examples/cluster"), cwd=tmp_path
    )
    assert discovered.returncode == 0, discovered.stderr
    count = re.search(r"^found (\d+) services:", discovered.stderr, re.MULTILINE)
    assert count is not None, discovered.stderr
    assert int(count.group(1)) > 0
    configmap = yaml.safe_load(discovered.stdout)
    assert configmap["kind"] == "ConfigMap"
    assert "kube-prometheus-stack-prometheus.monitoring.svc" in discovered.stdout


def test_every_installed_plugin_is_listed(venv: Path, tmp_path: Path) -> None:
    listed = run(venv, "dyntoolset", "plugins", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    for plugin in PLUGIN_DIRS:
        declared = pyproject(plugin)
        assert f" {declared['name']} {declared['version']} " in listed.stdout, listed.stdout
