"""connect(): the in-cluster service account in a Pod, the kubeconfig elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes.config import incluster_config

from dyntoolset.kube.connect import CredentialsError, connect
from dyntoolset.testing.apiserver import ApiServer


@pytest.fixture
def pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What a Pod has: the API server's address in the environment, a token and a CA."""
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("pod-token")
    ca.write_text("not parsed until a TLS connection is made")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")


@pytest.mark.usefixtures("pod")
def test_in_a_pod_the_service_account_is_used() -> None:
    connection = connect(inside=True)
    assert connection.in_cluster
    assert connection.host == "https://10.96.0.1:443"
    # The token goes on every request (as the client adds it, refresh hook included).
    headers: dict[str, str] = {}
    connection.api_client.update_params_for_auth(headers, [], ["BearerToken"], "/", "GET", None)
    assert headers["authorization"] == "bearer pod-token"
    # One retry policy, ours: urllib3's own retries are off.
    assert connection.api_client.configuration.retries is False


@pytest.mark.usefixtures("pod")
def test_an_explicit_kubeconfig_wins_in_a_pod(apiserver: ApiServer, tmp_path: Path) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    connection = connect(str(kubeconfig), inside=True)
    assert not connection.in_cluster
    assert connection.host == apiserver.url
    assert connection.api_client.configuration.retries is False


def test_outside_a_pod_the_kubeconfig_is_used(apiserver: ApiServer, tmp_path: Path) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    connection = connect(str(kubeconfig), inside=False)
    assert (connection.in_cluster, connection.host) == (False, apiserver.url)


def test_an_unknown_context_is_a_clear_error(apiserver: ApiServer, tmp_path: Path) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    with pytest.raises(
        CredentialsError, match=f"cannot load Kubernetes credentials from {kubeconfig}"
    ):
        connect(str(kubeconfig), "nope", inside=False)


def test_a_pod_without_a_token_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "missing"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(CredentialsError, match="from the in-cluster service account"):
        connect(inside=True)
