"""A throwaway venv that installs only what a test builds, borrowing every dependency.

Used by the tests that install freshly built wheels (tests/test_packaging.py,
tests/deploy/test_dockerfile.py): nothing is downloaded, because the venv's
site-packages is preceded by a ``.pth`` naming a directory of links to this
environment's packages, minus the dyntoolset distributions themselves (and
pip and setuptools). So the wheels under test are the only dyntoolset code
the venv can import or list.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: Entries of site-packages the test's venv must not borrow from this environment.
OWN = (
    "dyntoolset",
    "__editable__",
    "_dyntoolset",
    "pip",
    "setuptools",
    "_distutils_hack",
    "pkg_resources",
)


def reuse_installed_dependencies(venv: Path, links: Path) -> None:
    """Create ``venv`` (without pip) seeing this environment's packages through ``links``.

    Everything of this interpreter's site-packages except the dyntoolset
    distributions themselves (and pip and setuptools, which belong to the venv
    itself), so that only the wheels a test installs provide dyntoolset.
    """
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    links.mkdir()
    for entry in site.iterdir():
        lowered = entry.name.lower()
        # Editable installs put their finders in .pth files: none may leak in.
        if lowered.startswith(OWN) or entry.suffix == ".pth":
            continue
        (links / entry.name).symlink_to(entry)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (target,) = (venv / "lib").glob("python3.*/site-packages")
    (target / "_dependencies.pth").write_text(f"{links}\n")
