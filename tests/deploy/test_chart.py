"""examples/helm/dyntoolset: lint, and render with Helm v4's engine for the defaults and every option."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.deploy import checks
from tests.deploy.manifests import CHART, config_text, container_args, kinds, one
from tests.deploy.manifests import render_chart as render
from tests.deploy.schemas import assert_valid

#: One rendering per documented option (README.md's values table; test_chart_readme.py
#: checks that every value is exercised here).
OPTIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "image": {
        "image": {
            "repository": "registry.example.com/dyntoolset",
            "tag": "0.1.0-loki",
            "pullPolicy": "Always",
        },
        "imagePullSecrets": [{"name": "regcred"}],
    },
    "plugins": {"plugins": ["loki", "tempo"]},
    "config": {
        "config": {
            "output": {"name": "holmes-toolsets", "namespace": "holmes"},
            "resync_interval": "10m",
            "detectors": {"jaeger": {"enabled": False}},
        }
    },
    "health-checks-off": {"healthChecks": {"enabled": False, "mode": "auto"}},
    "health-checks-direct": {"healthChecks": {"enabled": True, "mode": "direct"}},
    "health-checks-proxy": {"healthChecks": {"enabled": True, "mode": "apiserver-proxy"}},
    "auth-static": {
        "auth": {"mode": "static", "tokenSecret": {"name": "dyntoolset-tokens", "key": "tokens"}}
    },
    "auth-none": {"auth": {"mode": "none", "tokenSecret": {"name": "", "key": "tokens"}}},
    "replicas": {"replicas": 3},
    "leader-election-off": {"leaderElection": {"enabled": False}},
    "shutdown-grace-period": {"shutdownGracePeriod": 90},
    "log-format": {"logFormat": "text"},
    "resources": {
        "resources": {"requests": {"cpu": "100m", "memory": "200Mi"}, "limits": {"memory": "1Gi"}}
    },
    "service-monitor": {
        "serviceMonitor": {"enabled": True, "interval": "1m", "labels": {"release": "kps"}}
    },
    "prometheus-rule": {"prometheusRule": {"enabled": True, "labels": {"release": "kps"}}},
    "network-policy-off": {"networkPolicy": {"enabled": False}},
    "scheduling": {
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "infra", "operator": "Exists", "effect": "NoSchedule"}],
    },
}


def test_the_chart_lints_clean_for_every_option() -> None:
    for name, values in OPTIONS.items():
        report = helm.lint(CHART, values, strict=True, kube_version="v1.32.0")
        # Severity: 1 info, 2 warning, 3 error. "icon is recommended" is the only info.
        serious = [m for m in report["messages"] if m["severity"] >= 2]
        assert (report["errors"], serious) == ([], []), f"{name}: {report}"


@pytest.mark.parametrize("name", OPTIONS)
def test_every_option_renders_valid_objects_holding_the_rules(name: str, tmp_path: Path) -> None:
    values = OPTIONS[name]
    objects = render(values)
    assert_valid(objects)
    checks.check_hardened_deployment(objects)
    checks.check_config_mounted_as_directory(objects)
    checks.check_selectors_select_the_pods(objects)
    checks.check_output_matches_rbac(objects, tmp_path)
    if values.get("leaderElection", {}).get("enabled", True):
        checks.check_lease_matches_rbac(objects)


def test_defaults_are_one_replica_without_prometheus_operator_objects() -> None:
    objects = render()
    assert "PodDisruptionBudget" not in kinds(objects)
    assert {"ServiceMonitor", "PrometheusRule"}.isdisjoint(kinds(objects))
    assert one(objects, "Deployment")["spec"]["replicas"] == 1
    assert one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "dyntoolset:0.1.0"
    )
    assert checks.proxy_rules(objects) == []
    assert checks.egress_to_every_pod(objects)


def test_the_image_values_choose_the_image() -> None:
    pod = one(render(OPTIONS["image"]), "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example.com/dyntoolset:0.1.0-loki"
    assert pod["containers"][0]["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]


def test_plugins_are_named_in_the_configuration(tmp_path: Path) -> None:
    objects = render(OPTIONS["plugins"])
    assert yaml.safe_load(config_text(objects))["detectors"] == {"loki": {}, "tempo": {}}
    shown = yaml.safe_load(checks.effective_config(objects, tmp_path))
    assert shown["detectors"]["loki"]["enabled"] is True
    # A plugin the image lacks stops the controller at start, naming the installed ones.
    missing = render({"plugins": ["nosuchdetector"]})
    path = tmp_path / "missing.yaml"
    path.write_text(config_text(missing))
    with pytest.raises(AssertionError, match="nosuchdetector"):
        checks.effective_config(missing, tmp_path)


def test_the_config_value_reaches_the_controller_and_its_rbac() -> None:
    objects = render(OPTIONS["config"])
    config = yaml.safe_load(config_text(objects))
    assert config["output"] == {"name": "holmes-toolsets", "namespace": "holmes"}
    assert config["detectors"] == {"jaeger": {"enabled": False}}
    role = one(objects, "Role", "dyntoolset-output")
    assert role["metadata"]["namespace"] == "holmes"
    assert role["rules"][0]["resourceNames"] == ["holmes-toolsets"]
    # The RoleBinding is in the output's namespace, the ServiceAccount in the release's.
    binding = one(objects, "RoleBinding", "dyntoolset-output")
    assert binding["metadata"]["namespace"] == "holmes"
    assert binding["subjects"][0]["namespace"] == "kubernaut-system"


@pytest.mark.parametrize(
    ("name", "enabled", "mode", "proxy", "egress"),
    [
        ("defaults", True, "auto", False, True),
        ("health-checks-direct", True, "direct", False, True),
        ("health-checks-proxy", True, "apiserver-proxy", True, False),
        ("health-checks-off", False, "auto", False, False),
    ],
)
def test_the_health_check_mode_sets_config_rbac_and_egress(
    name: str, enabled: bool, mode: str, proxy: bool, egress: bool
) -> None:
    objects = render(OPTIONS[name])
    assert yaml.safe_load(config_text(objects))["health_checks"] == {
        "enabled": enabled,
        "mode": mode,
    }
    assert bool(checks.proxy_rules(objects)) is proxy
    assert one(objects, "ClusterRole")["rules"][-1]["resources"] == (
        ["services/proxy"] if proxy else ["subjectaccessreviews"]
    )
    assert checks.egress_to_every_pod(objects) is egress


def test_static_auth_mounts_the_token_secret_and_names_the_file() -> None:
    objects = render(OPTIONS["auth-static"])
    auth = yaml.safe_load(config_text(objects))["api"]["auth"]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "auth")
    volume = next(v for v in pod["volumes"] if v["name"] == "auth")
    assert auth == {"mode": "static", "token_file": f"{mount['mountPath']}/tokens"}
    assert mount["readOnly"] is True and "subPath" not in mount
    assert volume["secret"] == {
        "secretName": "dyntoolset-tokens",
        "items": [{"key": "tokens", "path": "tokens"}],
    }


def test_auth_none_is_written_and_kubernetes_is_the_controllers_default() -> None:
    assert yaml.safe_load(config_text(render(OPTIONS["auth-none"])))["api"] == {
        "auth": {"mode": "none"}
    }
    assert "api" not in yaml.safe_load(config_text(render()))
    assert all(
        v["name"] != "auth"
        for v in one(render(), "Deployment")["spec"]["template"]["spec"]["volumes"]
    )


def test_replicas_add_a_budget_and_a_spread() -> None:
    objects = render(OPTIONS["replicas"])
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]


def test_without_leader_election_there_is_no_lease_and_no_lease_rbac() -> None:
    objects = render(OPTIONS["leader-election-off"])
    assert "--no-leader-elect" in container_args(objects)
    assert not any(a.startswith("--lease") for a in container_args(objects))
    assert not any(
        "leases" in r["resources"] for o in objects if o["kind"] == "Role" for r in o["rules"]
    )


def test_the_grace_period_and_log_format_reach_the_pod() -> None:
    objects = render({**OPTIONS["shutdown-grace-period"], **OPTIONS["log-format"]})
    assert checks.flag(container_args(objects), "shutdown-grace-period") == "90"
    assert checks.flag(container_args(objects), "log-format") == "text"
    assert (
        one(objects, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        == 100
    )


def test_resources_and_scheduling_reach_the_pod() -> None:
    pod = one(render({**OPTIONS["resources"], **OPTIONS["scheduling"]}), "Deployment")["spec"][
        "template"
    ]["spec"]
    assert pod["containers"][0]["resources"] == OPTIONS["resources"]["resources"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"] == OPTIONS["scheduling"]["tolerations"]


def test_the_prometheus_operator_objects_carry_their_labels_and_the_alerts() -> None:
    monitor = one(render(OPTIONS["service-monitor"]), "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "1m"}
    ]
    objects = render(OPTIONS["prometheus-rule"])
    assert one(objects, "PrometheusRule")["metadata"]["labels"]["release"] == "kps"
    checks.check_prometheus_rule_is_the_alerts_file(objects)


def test_the_network_policy_can_be_left_out() -> None:
    assert "NetworkPolicy" not in kinds(render(OPTIONS["network-policy-off"]))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"auth": {"mode": "static", "tokenSecret": {"name": "", "key": "tokens"}}},
            "auth.tokenSecret.name: auth.mode static needs the Secret",
        ),
        (
            {"config": {"api": {"auth": {"mode": "none"}}}},
            "config.api: set auth.mode and auth.tokenSecret instead",
        ),
        (
            {"config": {"health_checks": {"mode": "direct"}}},
            "config.health_checks.mode: set healthChecks.mode instead",
        ),
        (
            {"config": {"health_checks": {"enabled": False}}},
            "config.health_checks.enabled: set healthChecks.enabled instead",
        ),
        (
            {"replicas": 2, "leaderElection": {"enabled": False}},
            "replicas: more than one replica needs leaderElection.enabled",
        ),
    ],
)
def test_contradicting_values_are_refused_with_what_to_set(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=re.escape(message)):
        render(values)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"replicas": 0}, "/replicas"),
        ({"auth": {"mode": "oauth", "tokenSecret": {"name": "", "key": "tokens"}}}, "/auth/mode"),
        ({"healthChecks": {"enabled": True, "mode": "proxy"}}, "/healthChecks/mode"),
        ({"plugins": ["Loki"]}, "/plugins/0"),
        ({"serviceMonitor": {"enabled": True, "interval": "often"}}, "/serviceMonitor/interval"),
        ({"replica": 2}, "additional properties 'replica' not allowed"),
        ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ],
)
def test_values_against_the_schema_are_refused_naming_the_value(
    values: dict[str, Any], where: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        render(values)


def test_a_chart_without_the_rules_file_says_where_it_comes_from(tmp_path: Path) -> None:
    # Packaged without its link (a copy that lost files/): refused, not an empty PrometheusRule.
    copy = helm.Chart.load(CHART).save_dir(tmp_path)
    (Path(copy) / "files" / "dyntoolset-alerts.yaml").write_text("# nothing\n")
    with pytest.raises(
        helm.HelmRenderError, match=re.escape("files/dyntoolset-alerts.yaml has no rule groups")
    ):
        helm.Chart.load(copy).render({"prometheusRule": {"enabled": True}}, name="d", namespace="n")
