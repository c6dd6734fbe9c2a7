"""The real ``kubectl`` against the emulator: namespaces, 404 messages, ``auth can-i``, ``whoami``.

Each case runs the binary and reads the result back through the emulator
(the store or the official client), so both clients agree on the outcome.
"""

from __future__ import annotations

from typing import Any

import pytest

from dyntoolset.testing.apiserver import ApiServer

from .conftest import Kubectl, configmap, service

SYSTEM = ["default", "kube-node-lease", "kube-public", "kube-system"]


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_get_ns_lists_every_namespace_holding_an_object(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    apiserver.create(service("prometheus", "monitoring"))
    apiserver.create(configmap("toolsets", "kubernaut-system"))
    result = kubectl.run("get", "ns", "-o", "name")
    assert result.returncode == 0, result.stderr
    assert lines(result.stdout) == [
        f"namespace/{name}" for name in sorted([*SYSTEM, "kubernaut-system", "monitoring"])
    ]
    table = kubectl.run("get", "ns")
    assert table.returncode == 0, table.stderr
    assert "monitoring" in table.stdout


def test_create_and_delete_a_namespace(apiserver: ApiServer, kubectl: Kubectl) -> None:
    created = kubectl.run("create", "namespace", "ops")
    assert (created.returncode, created.stdout.strip()) == (0, "namespace/ops created")
    assert apiserver.get("namespaces", None, "ops")["status"]["phase"] == "Active"
    made = kubectl.run("create", "configmap", "c", "-n", "ops", "--from-literal=a=b")
    assert made.returncode == 0, made.stderr
    assert apiserver.get("configmaps", "ops", "c")["data"] == {"a": "b"}

    # kubectl waits until the namespace is gone, as against a real cluster.
    deleted = kubectl.run("delete", "namespace", "ops")
    assert (deleted.returncode, deleted.stdout.strip()) == (0, 'namespace "ops" deleted')
    assert apiserver.get("namespaces", None, "ops") is None
    assert apiserver.list_objects("configmaps", "ops") == []
    gone = kubectl.run("get", "namespace", "ops")
    assert gone.returncode == 1
    assert 'namespaces "ops" not found' in gone.stderr


def test_the_default_namespace_may_not_be_deleted(apiserver: ApiServer, kubectl: Kubectl) -> None:
    result = kubectl.run("delete", "namespace", "default")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'Error from server (Forbidden): namespaces "default" is forbidden: '
        "this namespace may not be deleted"
    )
    assert apiserver.get("namespaces", None, "default") is not None


def test_create_in_a_missing_namespace_names_the_namespace(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    result = kubectl.run("create", "configmap", "x", "-n", "missing", "--from-literal=a=b")
    assert result.returncode == 1
    assert 'namespaces "missing" not found' in result.stderr
    assert apiserver.list_objects("configmaps") == []
    assert apiserver.get("namespaces", None, "missing") is None


@pytest.mark.parametrize(
    "args",
    [
        ("get", "svc", "x"),
        ("patch", "svc", "x", "-p", '{"metadata":{"labels":{"a":"b"}}}'),
        ("delete", "svc", "x"),
    ],
)
def test_a_missing_object_is_named_in_the_404(
    apiserver: ApiServer, kubectl: Kubectl, args: tuple[str, ...]
) -> None:
    result = kubectl.run(*args, "-n", "default")
    assert result.returncode == 1
    assert result.stderr.strip() == 'Error from server (NotFound): services "x" not found'


@pytest.mark.parametrize(
    "args",
    [
        ("get", "svc", "x"),
        ("patch", "svc", "x", "-p", '{"metadata":{"labels":{"a":"b"}}}'),
        ("delete", "svc", "x"),
    ],
)
def test_in_a_missing_namespace_the_server_names_the_object(
    apiserver: ApiServer, kubectl: Kubectl, args: tuple[str, ...]
) -> None:
    result = kubectl.run(*args, "-n", "missing")
    assert result.returncode == 1
    # The server answers `services "x" not found`; for get and patch, kubectl then
    # looks the namespace up itself and reports that instead (against any server).
    if args[0] == "delete":
        assert 'services "x" not found' in result.stderr
    else:
        assert 'namespaces "missing" not found' in result.stderr
    first = next(r for r in apiserver.requests if r.resource == "services")
    assert (first.method, first.namespace, first.name, first.status) == (
        "GET" if args[0] != "delete" else "DELETE",
        "missing",
        "x",
        404,
    )


def test_auth_can_i_asks_the_access_policy(apiserver: ApiServer, kubectl: Kubectl) -> None:
    seen: list[dict[str, Any]] = []

    def policy(spec: dict[str, Any]) -> bool:
        seen.append(spec)
        attributes = spec.get("resourceAttributes") or {}
        return attributes.get("verb") == "list" and attributes.get("resource") == "services"

    apiserver.access_policy = policy
    allowed = kubectl.run("auth", "can-i", "list", "services", "-n", "monitoring")
    assert (allowed.returncode, allowed.stdout.strip()) == (0, "yes")
    denied = kubectl.run("auth", "can-i", "delete", "configmaps")
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    assert seen[0]["resourceAttributes"]["namespace"] == "monitoring"
    # The policy sees the requester as it sees a SubjectAccessReview's subject.
    assert (seen[0]["user"], seen[0]["groups"]) == (
        "system:anonymous",
        ["system:unauthenticated"],
    )


def test_auth_can_i_without_a_policy_says_no_and_why(kubectl: Kubectl) -> None:
    result = kubectl.run("auth", "can-i", "get", "pods")
    assert result.returncode == 1
    assert result.stdout.strip() == "no - no access policy is configured in the emulator"


def test_auth_whoami_without_tokens_is_anonymous(kubectl: Kubectl) -> None:
    result = kubectl.run("auth", "whoami", "-o", "jsonpath={.status.userInfo}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == '{"groups":["system:unauthenticated"],"username":"system:anonymous"}'


@pytest.mark.apiserver(tokens={"s3cret": "alice"})
def test_kubectl_sends_no_token_over_plain_http(apiserver: ApiServer, kubectl: Kubectl) -> None:
    # A documented limit: the emulator speaks plain HTTP, and kubectl keeps bearer
    # tokens for HTTPS, so with tokens required kubectl is refused.
    result = kubectl.run("auth", "whoami")
    assert result.returncode == 1
    assert "Unauthorized" in result.stderr
    assert apiserver.count(status=401) >= 1
