"""The chart and the kustomize overlays make the same objects for the same settings.

Normalised for what differs by design only: the labels Helm adds
(managed-by, chart, version), the Namespace object (Helm installs into an
existing namespace, ``--create-namespace``), and config.yaml compared as
dyntoolset reads it (``config show``: comments, key order and written-out
defaults do not count).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import checks
from tests.deploy.manifests import Object, render_chart

#: The chart's values that match each overlay.
SAME_SETTINGS: dict[str, dict[str, Any]] = {
    "minimal": {},
    "ha": {"replicas": 2, "serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "proxy-health": {"healthChecks": {"enabled": True, "mode": "apiserver-proxy"}},
}
HELM_LABELS = ("app.kubernetes.io/managed-by", "helm.sh/chart", "app.kubernetes.io/version")


def normalised(objects: list[Object], tmp_path: Path) -> dict[tuple[str, str], Object]:
    """The objects by (kind, name), with what legitimately differs taken out."""
    out: dict[tuple[str, str], Object] = {}
    for obj in objects:
        if obj["kind"] == "Namespace":
            continue
        labels = obj["metadata"].get("labels", {})
        for label in HELM_LABELS:
            labels.pop(label, None)
        if obj["kind"] == "ConfigMap":
            obj["data"]["config.yaml"] = checks.effective_config([*objects], tmp_path)
        out[(obj["kind"], obj["metadata"]["name"])] = obj
    return out


@pytest.mark.parametrize("name", SAME_SETTINGS)
def test_the_chart_renders_what_the_overlay_builds(
    overlay: Callable[[str], list[Object]], name: str, tmp_path: Path
) -> None:
    built = normalised(overlay(name), tmp_path)
    rendered = normalised(render_chart(SAME_SETTINGS[name]), tmp_path)
    assert sorted(rendered) == sorted(built)
    for key in built:
        assert rendered[key] == built[key], f"{name}: {key} differs"


def test_the_comparison_sees_a_difference(
    overlay: Callable[[str], list[Object]], tmp_path: Path
) -> None:
    # Guards the normalisation above against hiding everything: one changed
    # setting on one side is a difference.
    built = normalised(overlay("minimal"), tmp_path)
    rendered = normalised(render_chart({"shutdownGracePeriod": 31}), tmp_path)
    assert rendered[("Deployment", "dyntoolset")] != built[("Deployment", "dyntoolset")]
    assert rendered[("ConfigMap", "dyntoolset-config")] == built[("ConfigMap", "dyntoolset-config")]
