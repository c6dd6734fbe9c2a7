"""Fixtures of the deployment tests: the overlays built once per session by the real kubectl."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from tests.deploy.manifests import OVERLAYS, Object, kustomize, require_kubectl


@pytest.fixture(scope="session")
def _overlays(request: pytest.FixtureRequest) -> dict[str, list[Object]]:
    kubectl = require_kubectl(request.config)
    return {overlay: kustomize(kubectl, overlay) for overlay in OVERLAYS}


@pytest.fixture
def overlay(_overlays: dict[str, list[Object]]) -> Callable[[str], list[Object]]:
    """``overlay("ha")``: the objects of that overlay (a copy each test may change)."""
    return lambda name: copy.deepcopy(_overlays[name])
