"""Shared fixtures of the emulator's conformance tests: official client APIs bound to it."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from dyntoolset.testing.apiserver import ApiServer


@pytest.fixture
def v1(apiserver: ApiServer) -> client.CoreV1Api:
    """CoreV1Api talking to the emulator."""
    return client.CoreV1Api(apiserver.api_client)


@pytest.fixture
def leases(apiserver: ApiServer) -> client.CoordinationV1Api:
    """CoordinationV1Api talking to the emulator."""
    return client.CoordinationV1Api(apiserver.api_client)


def configmap(
    name: str,
    namespace: str = "default",
    data: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ConfigMap body."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}


def service(
    name: str,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Service body."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"ports": ports or [{"name": "http", "port": 80}]},
    }
