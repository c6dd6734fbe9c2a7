"""Shared fixtures of the emulator's conformance tests: official client APIs bound to it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import attrs
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


@attrs.frozen
class Kubectl:
    """The real ``kubectl`` binary, pointed at one emulator through a kubeconfig.

    ``run("get", "svc", "-A")`` returns the finished process; it never raises
    on a non-zero exit (tests assert ``returncode`` and ``stderr`` themselves).
    """

    binary: str
    kubeconfig: Path
    env: dict[str, str] = attrs.Factory(dict)

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl ARGS`` with the emulator's kubeconfig and no user configuration."""
        return subprocess.run(
            [self.binary, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.environment(env),
            check=False,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start ``kubectl ARGS`` in the background (``get -w``), stdout as text lines."""
        return subprocess.Popen(
            [self.binary, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environment(None),
        )

    def environment(self, env: dict[str, str] | None) -> dict[str, str]:
        """The environment kubectl runs in: the emulator's kubeconfig, nothing of the user's."""
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.kubeconfig.parent),  # no ~/.kube cache or config of the user
            "KUBECONFIG": str(self.kubeconfig),
            **self.env,
            **(env or {}),
        }


def kubectl_binary() -> str | None:
    """The ``kubectl`` to use: ``$KUBECTL`` if set, else the one on PATH."""
    return os.environ.get("KUBECTL") or shutil.which("kubectl")


@pytest.fixture
def kubectl(apiserver: ApiServer, tmp_path: Path) -> Kubectl:
    """The real ``kubectl`` talking to the ``apiserver`` fixture.

    Without a kubectl the test is skipped with the reason, or fails when
    ``DYNTOOLSET_REQUIRE_KUBECTL=1`` (CI sets it: a skipped suite is not a pass).
    """
    binary = kubectl_binary()
    if binary is None:
        reason = "no kubectl found (scripts/test-deps.sh installs Debian's kubernetes-client)"
        if os.environ.get("DYNTOOLSET_REQUIRE_KUBECTL") == "1":
            pytest.fail(f"{reason}, and DYNTOOLSET_REQUIRE_KUBECTL=1 requires one")
        pytest.skip(reason)
    return Kubectl(binary, apiserver.write_kubeconfig(tmp_path / "kube" / "config"))
