"""health_transport: which transport health_checks.mode means, in and out of a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

import dyntoolset.kube.incluster as incluster
from dyntoolset.config import GlobalHealthChecks
from dyntoolset.health import HealthChecker
from dyntoolset.kube.proxy import ApiServerProxyTransport, health_transport

CLIENT = object()  # never called: choosing a transport makes no request


def mode_of(options: GlobalHealthChecks, client: object = CLIENT, **kwargs: bool) -> str:
    return HealthChecker(options, transport=health_transport(options, client, **kwargs)).mode


def test_auto_mode_picks_direct_in_cluster_and_the_proxy_outside() -> None:
    assert mode_of(GlobalHealthChecks(), inside=True) == "direct"
    assert mode_of(GlobalHealthChecks(), inside=False) == "apiserver-proxy"
    # No client to proxy through: direct is all there is.
    assert health_transport(GlobalHealthChecks(), None, inside=False) is None


def test_explicit_modes_win_over_detection() -> None:
    assert mode_of(GlobalHealthChecks(mode="direct"), inside=False) == "direct"
    assert mode_of(GlobalHealthChecks(mode="apiserver-proxy"), inside=True) == "apiserver-proxy"
    with pytest.raises(ValueError, match="apiserver-proxy needs a Kubernetes client"):
        health_transport(GlobalHealthChecks(mode="apiserver-proxy"), None)


def test_auto_mode_detects_a_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    monkeypatch.setattr(incluster, "SERVICE_ACCOUNT_TOKEN", str(token))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert incluster.in_cluster()
    assert health_transport(GlobalHealthChecks(), CLIENT) is None
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert not incluster.in_cluster()
    assert isinstance(health_transport(GlobalHealthChecks(), CLIENT), ApiServerProxyTransport)
