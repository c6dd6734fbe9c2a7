"""Building the deployment manifests the way a user does, for the tests of tests/deploy.

Two sources of Kubernetes objects: ``kubectl kustomize`` of an overlay of
``examples/kubernetes`` (the real kubectl, v1.32, with its built-in
kustomize) and the Helm chart ``examples/helm/dyntoolset`` rendered by Helm
v4's own template engine (the ``helm-python-sdk`` wheel, no ``helm`` binary).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.apiserver.conftest import kubectl_binary

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "examples" / "kubernetes"
OVERLAYS = ("minimal", "ha", "proxy-health")
CHART = ROOT / "examples" / "helm" / "dyntoolset"
OBSERVABILITY = ROOT / "examples" / "observability"
RELEASE = "dyntoolset"
NAMESPACE = "kubernaut-system"

Object = dict[str, Any]

helm.disable_logging()  # the SDK logs each symlink it follows (files/ links to the rules)


def require_kubectl(config: pytest.Config) -> str:
    """The kubectl to build overlays with; without one, skip (or fail when it is required).

    As in tests/apiserver/conftest.py: ``DYNTOOLSET_REQUIRE_KUBECTL=1`` (CI)
    and ``--require-integration`` (``nox -s tests``) make a missing kubectl a
    failure, never a skipped pass.
    """
    binary = kubectl_binary()
    if binary is not None:
        return binary
    reason = "no kubectl found (scripts/test-deps.sh installs Debian's kubernetes-client)"
    if os.environ.get("DYNTOOLSET_REQUIRE_KUBECTL") == "1" or config.getoption(
        "--require-integration"
    ):
        pytest.fail(f"{reason}, and this run requires one")
    pytest.skip(reason)


def kustomize(kubectl: str, overlay: str) -> list[Object]:
    """The objects ``kubectl kustomize examples/kubernetes/overlays/OVERLAY`` prints."""
    done = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZE / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(KUSTOMIZE)},
    )
    assert done.returncode == 0, f"kubectl kustomize {overlay} failed:\n{done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def render_chart(values: Mapping[str, Any] | None = None) -> list[Object]:
    """The objects of the chart for ``values``, as ``helm template dyntoolset -n kubernaut-system``."""
    chart = helm.Chart.load(CHART)
    rendered = chart.render(dict(values or {}), name=RELEASE, namespace=NAMESPACE)
    objects: list[Object] = []
    for path in sorted(rendered):
        if path.endswith(".yaml"):
            objects.extend(d for d in yaml.safe_load_all(rendered[path]) if d)
    return objects


def one(objects: Iterable[Object], kind: str, name: str | None = None) -> Object:
    """The single object of ``kind`` (and ``name``)."""
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(objects: Iterable[Object]) -> list[str]:
    """The kinds of ``objects``, sorted."""
    return sorted(o["kind"] for o in objects)


def config_text(objects: Iterable[Object]) -> str:
    """config.yaml of the configuration ConfigMap (the one the Deployment mounts)."""
    deployment = one(objects, "Deployment")
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"
    )
    text: str = one(objects, "ConfigMap", volume["configMap"]["name"])["data"]["config.yaml"]
    return text


def container_args(objects: Iterable[Object]) -> list[str]:
    """The arguments of the controller's container (the image's entry point is ``dyntoolset run``)."""
    args: list[str] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    return args


def alert_groups() -> list[Any]:
    """The rule groups of examples/observability/dyntoolset-alerts.yaml, the one copy of the alerts."""
    groups: list[Any] = yaml.safe_load((OBSERVABILITY / "dyntoolset-alerts.yaml").read_text())[
        "groups"
    ]
    return groups
