"""The RBAC of the manifests is exactly what the controller's API calls need.

The real ``dyntoolset run``, started with the container's own arguments and
configuration from the rendered manifests, runs against the API emulator:
it creates the output ConfigMap, repairs an edit, takes and renews the
Lease, checks health through the proxy where the configuration says so, and
shuts down (releasing the Lease). Each request of the emulator's log
(verb, group, resource, name, namespace) must be allowed by the rules bound
to the ServiceAccount, with resourceNames applied as the API server does; and
each rule must be used by some request, except the documented ones below.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from dyntoolset.testing.apiserver import ApiServer
from tests.deploy.manifests import NAMESPACE, Object, config_text, container_args, one, render_chart
from tests.kube._support import prometheus, wait_for

OUTPUT = "kubernaut-toolset-config"


@attrs.frozen
class Call:
    """One request as RBAC sees it."""

    verb: str
    group: str
    resource: str
    name: str | None
    namespace: str | None


@attrs.frozen
class Rule:
    """One PolicyRule, with the namespace its Role grants it in (None: a ClusterRole)."""

    namespace: str | None
    groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    names: tuple[str, ...]

    def allows(self, call: Call) -> bool:
        """The API server's matching: namespace, group, resource, verb, and resourceNames if any."""
        return (
            (self.namespace is None or self.namespace == call.namespace)
            and call.group in self.groups
            and call.resource in self.resources
            and call.verb in self.verbs
            and (not self.names or call.name in self.names)
        )


def calls(api: ApiServer) -> set[Call]:
    """Every resource request of the emulator's log, as RBAC attributes."""
    out: set[Call] = set()
    for r in api.requests:
        if r.resource is None:
            continue  # discovery, /version: open to every authenticated user
        group = r.path.split("/")[2] if r.path.startswith("/apis/") else ""
        resource, verb, name = r.resource, r.verb or "", r.name
        if verb == "proxy":
            resource, verb = f"{resource}/proxy", r.method.lower()
        # list and watch are authorized by name when they select one by metadata.name.
        selector = re.fullmatch(r"metadata\.name=([^,]+)", r.query.get("fieldSelector", ""))
        if verb in ("list", "watch") and selector:
            name = selector.group(1)
        out.add(Call(verb, group, resource, name, r.namespace))
    return out


def rules(objects: list[Object], account: str, account_namespace: str) -> list[Rule]:
    """The rules the bindings in ``objects`` grant to the ServiceAccount."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}
    granted: list[Rule] = []
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subject = {"kind": "ServiceAccount", "name": account, "namespace": account_namespace}
        if subject not in binding["subjects"]:
            continue
        namespace = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"])]
        for rule in role["rules"]:
            granted.append(
                Rule(
                    namespace,
                    tuple(rule["apiGroups"]),
                    tuple(rule["resources"]),
                    tuple(rule["verbs"]),
                    tuple(rule.get("resourceNames", ())),
                )
            )
    return granted


def used_permissions(granted: Iterable[Rule], made: set[Call]) -> set[tuple[Rule, str, str, str]]:
    """(rule, group, resource, verb) of each rule that some call needed."""
    return {(rule, c.group, c.resource, c.verb) for rule in granted for c in made if rule.allows(c)}


def unused_permissions(granted: list[Rule], made: set[Call]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) granted by some rule that no call needed."""
    used = used_permissions(granted, made)
    return {
        (g, res, v)
        for rule in granted
        for g in rule.groups
        for res in rule.resources
        for v in rule.verbs
        if (rule, g, res, v) not in used
    }


def run_controller(objects: list[Object], api: ApiServer, tmp_path: Path, proxy: bool) -> None:
    """``dyntoolset run`` with the manifests' arguments and configuration, until it has done it all."""
    for obj in objects:
        if obj["kind"] == "Namespace":
            api.create(obj)
    if not any(o["kind"] == "Namespace" for o in objects):
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    api.create(prometheus())
    # auto means direct in a Pod, which this process is not (it would use the proxy).
    config = yaml.safe_load(config_text(objects))
    if config["health_checks"]["mode"] == "auto":
        config["health_checks"]["mode"] = "direct"
    config["health_checks"]["deadline"] = "2s"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    args = [
        f"--config={tmp_path / 'config.yaml'}" if a.startswith("--config=") else a
        for a in container_args(objects)
    ]
    command = [
        sys.executable,
        "-m",
        "dyntoolset",
        "run",
        *args,
        f"--kubeconfig={api.write_kubeconfig(tmp_path / 'kubeconfig')}",
        "--listen=127.0.0.1:0",
        "--metrics-listen=127.0.0.1:0",
        # Fast client-go timings, so the Lease is renewed within the run.
        "--leader-elect-lease-duration=3",
        "--leader-elect-renew-deadline=2",
        "--leader-elect-retry-period=0.25",
    ]
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        wait_for(lambda: api.get("configmaps", NAMESPACE, OUTPUT), 60, "the output ConfigMap")
        if "--leader-elect" in args:
            wait_for(lambda: api.count(verb="update", resource="leases") >= 2, 60, "a renewal")
        if proxy:
            wait_for(lambda: api.count(verb="proxy"), 60, "a health check through the proxy")

        def edit(cm: dict[str, Any]) -> None:
            cm["data"]["toolset.json"] = "{}"

        api.modify("configmaps", NAMESPACE, OUTPUT, edit)
        wait_for(
            lambda: any(w.verb == "update" for w in api.writes("configmaps")), 60, "the repair"
        )
        if config.get("api", {}).get("auth", {}).get("mode", "kubernetes") == "kubernetes":
            ask_the_api(api, tmp_path / "run.log")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        log.close()
    assert code == 0, (tmp_path / "run.log").read_text()


def ask_the_api(api: ApiServer, log: Path) -> None:
    """One authenticated API request: the run reviews the caller's token (TokenReview,
    then SubjectAccessReview), two calls its RBAC must allow."""
    api.add_token("reader-token", "alice")
    api.allow("alice", "get", path="/api/v1/statistics")
    served = wait_for(
        lambda: re.search(r"serving probes\S* .*?on (\S+):(\d+)", log.read_text()), 60, "the API"
    )
    request = urllib.request.Request(
        f"http://{served[1]}:{served[2]}/api/v1/statistics",
        headers={"Authorization": "Bearer reader-token"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


CASES: dict[str, tuple[Callable[[Callable[[str], list[Object]]], list[Object]], bool]] = {
    "kustomize minimal": (lambda overlay: overlay("minimal"), False),
    "kustomize proxy-health": (lambda overlay: overlay("proxy-health"), True),
    "chart without leader election": (
        lambda _: render_chart({"leaderElection": {"enabled": False}}),
        False,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_the_rbac_allows_every_call_and_grants_nothing_unused(
    overlay: Callable[[str], list[Object]], apiserver: ApiServer, tmp_path: Path, case: str
) -> None:
    build, proxy = CASES[case]
    objects = build(overlay)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    run_controller(objects, apiserver, tmp_path, proxy)
    made = calls(apiserver)
    granted = rules(
        objects, pod["serviceAccountName"], one(objects, "Deployment")["metadata"]["namespace"]
    )
    refused = {c for c in made if not any(rule.allows(c) for rule in granted)}
    assert refused == set(), f"calls the manifests' RBAC refuses: {refused}"
    assert unused_permissions(granted, made) == set()


def test_ha_grants_what_minimal_grants(overlay: Callable[[str], list[Object]]) -> None:
    # Two replicas make the same calls as one (the follower's are a subset of
    # the leader's), so the run above for minimal covers ha's RBAC.
    def rbac(objects: list[Object]) -> list[Object]:
        return [
            o
            for o in objects
            if o["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
        ]

    assert rbac(overlay("ha")) == rbac(overlay("minimal"))


def test_resource_names_limit_what_a_rule_allows() -> None:
    # The check above is only as good as this matching: a name outside
    # resourceNames, another namespace or verb is refused.
    rule = Rule(NAMESPACE, ("",), ("configmaps",), ("get", "update"), (OUTPUT,))
    assert rule.allows(Call("get", "", "configmaps", OUTPUT, NAMESPACE))
    assert not rule.allows(Call("get", "", "configmaps", "other", NAMESPACE))
    assert not rule.allows(Call("get", "", "configmaps", None, NAMESPACE))
    assert not rule.allows(Call("get", "", "configmaps", OUTPUT, "default"))
    assert not rule.allows(Call("delete", "", "configmaps", OUTPUT, NAMESPACE))
    cluster = Rule(None, ("",), ("services",), ("list",), ())
    assert cluster.allows(Call("list", "", "services", None, "any"))
    assert not cluster.allows(Call("list", "apps", "services", None, None))
