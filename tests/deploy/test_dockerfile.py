"""The Dockerfile: what can be checked without building it, and its install steps, run here.

Docker is not available on these machines. The test reads the Dockerfile
(``dockerfile.py``), checks the image's shape (slim Python base, two
stages, a numeric non-root user, ``dyntoolset run`` as the entry point),
then runs its own RUN steps with the paths of the image mapped into a
temporary directory: the build stage's ``pip wheel`` on a context made of
exactly what its COPY instructions copy (so a file missing from a COPY fails
here as it would in ``docker build``), and the final stage's venv and ``pip
install`` of those wheels, with ``PLUGINS`` set as ``--build-arg`` would.
The result must report its version and list exactly the chosen plugins.

Two things keep it fast and offline, without changing a step: the wheels are
built with this interpreter's setuptools (``PIP_NO_BUILD_ISOLATION``, as the
test extra requires setuptools>=77, the plugins' build requirement), and the
dependencies are the ones already installed here (``tests/venvs.py``: the
venv borrows this environment's packages, minus dyntoolset and its plugins),
and pip may not use an index (``PIP_NO_INDEX``). So only the wheels just
built are installed, from them; the RUN step creating the venv again in place
keeps the borrowed packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from dyntoolset.version import __version__
from tests.deploy.dockerfile import Stage, instructions, stages
from tests.venvs import reuse_installed_dependencies

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
#: The build argument PLUGINS of the install test.
CHOSEN = "dyntoolset-loki dyntoolset-tempo"


def final_and_build() -> tuple[Stage, Stage]:
    _, found = stages(DOCKERFILE)
    assert len(found) == 2, "a build stage and a final stage"
    return found[1], found[0]


def test_the_image_is_slim_python_311_in_two_stages() -> None:
    final, build = final_and_build()
    assert build.image == final.image == "python:3.11-slim"
    assert build.name == "build"
    # The final stage takes the wheels from the build stage, never its sources.
    (install,) = final.all("RUN")
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in install.options
    assert final.all("COPY") == []


def test_the_user_is_numeric_and_not_root() -> None:
    final, _ = final_and_build()
    user = final.last("USER")
    assert user is not None, "the final stage sets USER"
    uid, _, gid = user.text.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric uid, so runAsNonRoot can verify it"
    assert gid.isdigit() and int(gid) != 0
    # Nothing runs after USER that would need root.
    after = final.instructions[final.instructions.index(user) :]
    assert not [i for i in after if i.keyword == "RUN"]


def test_the_entry_point_is_dyntoolset_run_a_console_script() -> None:
    final, _ = final_and_build()
    entrypoint = final.last("ENTRYPOINT")
    assert entrypoint is not None
    assert entrypoint.exec_form() == ["dyntoolset", "run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "dyntoolset" in scripts


def test_pip_keeps_no_cache_and_the_plugins_exist() -> None:
    final, build = final_and_build()
    for run in [*build.all("RUN"), *final.all("RUN")]:
        for command in run.text.split("&&"):
            if " pip install" in f" {command}" or " pip wheel" in f" {command}":
                assert "--no-cache-dir" in command, f"line {run.line}: {command}"
    # As `docker build --build-arg PLUGINS=...`: two plugins (fewer wheels to build), and a
    # plugin left out must be missing from the result.
    assert set(CHOSEN.split()) < set(build.args()["PLUGINS"].split())
    plugins = CHOSEN.split()
    assert plugins, "ARG PLUGINS names the plugins installed by default"
    for plugin in plugins:
        assert (ROOT / "plugins" / plugin / "pyproject.toml").exists(), plugin


def test_the_reader_joins_continuations_and_reads_options() -> None:
    text = "# c\nFROM a AS b\nRUN --mount=x \\\n    one \\\n    # inner\n    && two\nUSER 1:1\n"
    read = instructions(text)
    assert [(i.keyword, i.options, i.text, i.line) for i in read] == [
        ("FROM", (), "a AS b", 2),
        ("RUN", ("--mount=x",), "one && two", 3),
        ("USER", (), "1:1", 7),
    ]
    with pytest.raises(ValueError, match="ends inside a continued line"):
        instructions("RUN a \\\n")


def copy_context(build: Stage, workdir: Path) -> None:
    """What the build stage's COPY instructions put in WORKDIR, honouring .dockerignore."""
    ignored = [
        line.strip().removeprefix("**/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for copy in build.all("COPY"):
        *sources, target = copy.text.split()
        destination = workdir / target
        for source in sources:
            src = ROOT / source
            if src.is_dir():
                shutil.copytree(
                    src, destination, ignore=shutil.ignore_patterns(*ignored), dirs_exist_ok=True
                )
            else:
                destination.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, destination / src.name)


def run_step(command: str, where: Path, mapping: dict[str, Path], env: dict[str, str]) -> None:
    """One RUN step, the image's paths mapped, in a shell like the image's ``/bin/sh -c``."""
    for image_path, here in mapping.items():
        assert image_path in command, f"{image_path} is not in the step: {command}"
        command = command.replace(image_path, str(here))
    done = subprocess.run(
        ["sh", "-c", command],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"


@pytest.mark.timeout(400)  # builds three wheels and a venv: about a minute on 2 busy cores
def test_the_install_steps_give_dyntoolset_with_the_chosen_plugins(tmp_path: Path) -> None:
    final, build = final_and_build()
    workdir_instruction = build.last("WORKDIR")
    assert workdir_instruction is not None
    context = tmp_path / "src"
    context.mkdir()
    copy_context(build, context)
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    mapping = {"/wheels": wheels, "/opt/dyntoolset": venv}
    # As `docker build --build-arg PLUGINS=...`: two plugins (fewer wheels to build), and a
    # plugin left out must be missing from the result.
    assert set(CHOSEN.split()) < set(build.args()["PLUGINS"].split())
    plugins = CHOSEN
    # The image's python and pip are this interpreter's (3.11, like python:3.11-slim).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "pip").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pip "$@"\n')
    (bin_dir / "pip").chmod(0o755)
    env = {
        **os.environ,
        "PLUGINS": plugins,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        # pip's inverted spelling: this turns build isolation off.
        "PIP_NO_BUILD_ISOLATION": "0",
    }
    env.pop("VIRTUAL_ENV", None)
    for run in build.all("RUN"):
        run_step(run.text, context, {"/wheels": wheels}, env)
    names = sorted(p.name.split("-")[0] for p in wheels.glob("*.whl"))
    expected = sorted(["dyntoolset", *(p.replace("-", "_") for p in plugins.split())])
    assert names == expected, "one wheel per package, no dependencies"
    # setuptools builds without a license file it cannot find, silently: COPY must bring it.
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            licences = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert licences, f"{wheel.name} has no LICENSE"
    reuse_installed_dependencies(venv, tmp_path / "dependencies")
    for run in final.all("RUN"):
        run_step(run.text, tmp_path, mapping, {**env, "PIP_NO_INDEX": "1"})
    version = subprocess.run(
        [str(venv / "bin" / "dyntoolset"), "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in version.stdout
    listed = subprocess.run(
        [str(venv / "bin" / "dyntoolset"), "plugins"], capture_output=True, text=True, check=True
    ).stdout
    for plugin in plugins.split():
        assert f" {plugin} " in listed, f"{plugin} missing from `dyntoolset plugins`:\n{listed}"
    assert " dyntoolset-kafka " not in listed
    # pip is gone from the image's venv: nothing can be installed at run time.
    assert not (venv / "bin" / "pip").exists()
