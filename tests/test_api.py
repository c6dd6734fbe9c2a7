"""The public library API: what the README promises embedders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dyntoolset
from dyntoolset import Engine, service_from_object
from dyntoolset.manifests import read_manifests
from dyntoolset.testing import make_plugin_set

EXAMPLE = Path(__file__).parent.parent / "examples" / "cluster"


def test_readme_embedding_example():
    objects = [o.obj for o in read_manifests([str(EXAMPLE)]).objects if o.kind == "Service"]
    engine = Engine(dyntoolset.load_config(None, make_plugin_set()), make_plugin_set())
    services = [service_from_object(o) for o in objects]
    merge = engine.cycle(services, existing=None, now="2026-01-01T00:00:00Z").merge
    assert merge is not None and merge.changed and merge.created
    again = engine.cycle(services, existing=merge.configmap, now="2026-02-01T00:00:00Z").merge
    assert again is not None
    assert not again.changed


def test_every_public_name_is_exported_and_documented():
    for name in dyntoolset.__all__:
        obj = getattr(dyntoolset, name)
        if callable(obj) and not name.startswith("_"):
            assert obj.__doc__, f"dyntoolset.{name} has no docstring"


def test_importing_the_library_loads_neither_the_testing_kit_nor_the_kubernetes_client():
    code = (
        "import sys, dyntoolset, dyntoolset.cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('dyntoolset.testing', 'kubernetes'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_is_typed():
    assert (Path(dyntoolset.__file__).parent / "py.typed").exists()
