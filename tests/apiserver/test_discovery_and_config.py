"""Discovery, /version, kubeconfig and client configuration."""

from __future__ import annotations

import json
import urllib.request

import pytest
from kubernetes import client, config

from dyntoolset.testing.apiserver import ApiServer


def test_version_endpoint_through_client(apiserver: ApiServer) -> None:
    info = client.VersionApi(apiserver.api_client).get_code()
    assert info.major == "1"
    assert info.git_version.startswith("v1.")


def test_core_discovery_lists_served_resources(apiserver: ApiServer) -> None:
    resources = client.CoreV1Api(apiserver.api_client).get_api_resources()
    names = {r.name: r for r in resources.resources}
    assert {"services", "configmaps", "namespaces", "services/proxy"} <= set(names)
    assert names["configmaps"].namespaced is True
    assert names["namespaces"].namespaced is False
    assert "watch" in names["services"].verbs


def test_group_discovery(apiserver: ApiServer) -> None:
    groups = client.ApisApi(apiserver.api_client).get_api_versions()
    by_name = {g.name: g for g in groups.groups}
    assert set(by_name) == {"coordination.k8s.io", "authentication.k8s.io", "authorization.k8s.io"}
    assert (
        by_name["coordination.k8s.io"].preferred_version.group_version == "coordination.k8s.io/v1"
    )
    leases = client.CoordinationV1Api(apiserver.api_client).get_api_resources()
    assert [r.name for r in leases.resources] == ["leases"]
    core = client.CoreApi(apiserver.api_client).get_api_versions()
    assert core.versions == ["v1"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/livez"])
def test_health_endpoints(apiserver: ApiServer, path: str) -> None:
    with urllib.request.urlopen(apiserver.url + path, timeout=5) as response:
        assert response.status == 200
        assert response.read() == b"ok"


def test_unknown_path_is_status_404(apiserver: ApiServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(apiserver.url + "/api/v1/pods", timeout=5)
    assert caught.value.code == 404
    body = json.loads(caught.value.read())
    assert body["kind"] == "Status" and body["reason"] == "NotFound" and body["code"] == 404


def test_kubeconfig_loads_with_official_loader(apiserver: ApiServer) -> None:
    assert apiserver.kubeconfig_path is not None and apiserver.kubeconfig_path.exists()
    apiserver.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    api_client = config.new_client_from_config(config_file=str(apiserver.kubeconfig_path))
    try:
        items = client.CoreV1Api(api_client).list_service_for_all_namespaces().items
    finally:
        api_client.close()
    assert [(s.metadata.namespace, s.metadata.name) for s in items] == [("shop", "web")]


def test_kubeconfig_is_removed_when_server_stops() -> None:
    server = ApiServer().start()
    path = server.kubeconfig_path
    assert path is not None and path.exists()
    server.stop()
    assert not path.exists()


def test_configuration_disables_urllib3_retries(apiserver: ApiServer) -> None:
    assert apiserver.configuration().retries is False
    assert apiserver.configuration().host == apiserver.url
