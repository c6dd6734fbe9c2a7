"""examples/kubernetes: every overlay builds with kubectl's kustomize and holds the rules of checks.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy import checks
from tests.deploy.manifests import OVERLAYS, Object, container_args, kinds, one
from tests.deploy.schemas import assert_valid, problems

Overlay = Callable[[str], list[Object]]

BASE_KINDS = [
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "Deployment",
    "Namespace",
    "NetworkPolicy",
    "Role",
    "Role",
    "RoleBinding",
    "RoleBinding",
    "Service",
    "ServiceAccount",
]


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_object_of_every_overlay_validates(overlay: Overlay, name: str) -> None:
    assert_valid(overlay(name))


def test_the_validation_catches_a_misplaced_field(overlay: Overlay) -> None:
    # The check above would pass vacuously with a lenient schema: prove it is strict.
    objects = overlay("ha")
    deployment = one(objects, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFS"] = True
    monitor = one(objects, "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    rule = one(objects, "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["for"] = 10
    assert any("readOnlyRootFS" in p for p in problems(deployment))
    assert any("intervall" in p for p in problems(monitor))
    assert any("for" in p for p in problems(rule))


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_overlay_holds_the_deployment_rules(
    overlay: Overlay, name: str, tmp_path: Path
) -> None:
    objects = overlay(name)
    checks.check_hardened_deployment(objects)
    checks.check_config_mounted_as_directory(objects)
    checks.check_output_matches_rbac(objects, tmp_path)
    checks.check_lease_matches_rbac(objects)
    checks.check_selectors_select_the_pods(objects)
    assert {
        o["metadata"].get("namespace")
        for o in objects
        if o["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")
    } == {"kubernaut-system"}


def test_minimal_is_the_base(overlay: Overlay) -> None:
    objects = overlay("minimal")
    assert kinds(objects) == BASE_KINDS
    assert one(objects, "Deployment")["spec"]["replicas"] == 1
    assert checks.proxy_rules(objects) == []
    assert checks.egress_to_every_pod(objects)


def test_ha_runs_two_leader_electing_replicas_with_a_budget_and_monitoring(
    overlay: Overlay,
) -> None:
    objects = overlay("ha")
    assert kinds(objects) == sorted(
        [*BASE_KINDS, "PodDisruptionBudget", "PrometheusRule", "ServiceMonitor"]
    )
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert "--leader-elect" in container_args(objects)
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "kubernetes.io/hostname"
    checks.check_prometheus_rule_is_the_alerts_file(objects)


def test_only_proxy_health_grants_the_service_proxy(overlay: Overlay, tmp_path: Path) -> None:
    objects = overlay("proxy-health")
    assert checks.proxy_rules(objects) == [
        {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]}
    ]
    assert "health_checks:\n  enabled: true\n  mode: apiserver-proxy\n" in (
        checks.effective_config(objects, tmp_path)
    )
    # Through the proxy, the controller needs no connection to the backends' Pods.
    assert not checks.egress_to_every_pod(objects)
    for other in ("minimal", "ha"):
        assert checks.proxy_rules(overlay(other)) == []
