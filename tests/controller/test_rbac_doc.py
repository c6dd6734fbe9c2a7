"""The RBAC in docs/running-the-controller.md is exactly what a run uses."""

from __future__ import annotations

import http.client
import socket
import threading
from pathlib import Path
from typing import Any

import yaml

from dyntoolset.controller.runner import Runner, RunOptions
from dyntoolset.kube.lease import LeaseTimings
from dyntoolset.testing.apiserver import ApiServer
from tests.kube._support import prometheus, wait_for

DOC = Path(__file__).parents[2] / "docs" / "running-the-controller.md"
NAMESPACE = "kubernaut-system"
OUTPUT = "kubernaut-toolset-config"

Permission = tuple[
    str | None, str, str, str
]  # namespace (None: cluster-wide), group, resource, verb


def documented() -> set[Permission]:
    section = DOC.read_text().split("## RBAC", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    granted: set[Permission] = set()
    for document in yaml.safe_load_all(block):
        namespace = document["metadata"]["namespace"] if document["kind"] == "Role" else None
        for rule in document["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        granted.add((namespace, group, resource, verb))
    return granted


def used(api: ApiServer) -> set[Permission]:
    calls: set[Permission] = set()
    for r in api.requests:
        if r.resource is None:
            continue  # discovery documents, /version: open to every authenticated user
        group = r.path.split("/")[2] if r.path.startswith("/apis/") else ""
        resource, verb = r.resource, r.verb or ""
        if verb == "proxy":
            resource, verb = f"{resource}/proxy", r.method.lower()
        calls.add((r.namespace, group, resource, verb))
    return calls


def covered(call: Permission, granted: set[Permission]) -> bool:
    _, group, resource, verb = call
    return (None, group, resource, verb) in granted or call in granted


def test_the_documented_rbac_is_every_call_a_run_makes(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    apiserver.create(prometheus())
    # The HTTP API (api.auth.mode kubernetes, the default) asks the API server too.
    apiserver.add_token("operator-token", "operator")
    apiserver.allow("operator", "create", path="/api/v1/config/reload")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        listen = probe.getsockname()
    apiserver.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "dyntoolset-config", "namespace": NAMESPACE},
            # Health checks on (through the proxy, out of the cluster), fast.
            "data": {"config.yaml": "health_checks: {deadline: 2s}\n"},
        }
    )
    runner = Runner(
        RunOptions(
            kubeconfig=str(apiserver.write_kubeconfig(tmp_path / "kubeconfig")),
            config_configmap=f"{NAMESPACE}/dyntoolset-config",
            leader_elect=True,
            lease_timings=LeaseTimings(3, 2, 0.25),
            listen=listen,
            metrics_listen=("127.0.0.1", 0),
        ),
        inside=False,
    )
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(runner.run()), daemon=True)
    thread.start()
    try:
        wait_for(lambda: apiserver.get("configmaps", NAMESPACE, OUTPUT), 60, "the output")
        wait_for(lambda: apiserver.count(verb="proxy"), 60, "a health check")

        # An operator's edit of a generated key: restored with an update.
        def edit(cm: dict[str, Any]) -> None:
            cm["data"]["toolset.json"] = "{}"

        apiserver.modify("configmaps", NAMESPACE, OUTPUT, edit)
        wait_for(
            lambda: any(w.verb == "update" for w in apiserver.writes("configmaps")),
            60,
            "the drift repair",
        )
        conn = http.client.HTTPConnection(*listen, timeout=30)
        conn.request(
            "POST", "/api/v1/config/reload", headers={"Authorization": "Bearer operator-token"}
        )
        assert conn.getresponse().status != 401  # reviewed: a TokenReview and an access review
        conn.close()
    finally:
        runner.request_stop()
        thread.join(60)
    assert result == [0]
    granted, calls = documented(), used(apiserver)
    missing = {c for c in calls if not covered(c, granted)}
    assert missing == set(), f"calls the documented RBAC does not allow: {missing}"
    unused = {g for g in granted if not any(covered(c, {g}) for c in calls)}
    assert unused == set(), f"documented permissions a run never needs: {unused}"
