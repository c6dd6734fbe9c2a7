"""What every rendering of the deployment must hold, whichever tool made it (kustomize or Helm).

One function per rule, shared by test_kustomize.py and test_chart.py, so
the two sources are held to the same rules in one place.
"""

from __future__ import annotations

import io
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from dyntoolset.cli import main
from tests.deploy.manifests import Object, alert_groups, config_text, container_args, one

#: Seconds the kubelet must leave beyond --shutdown-grace-period (Lease release, exit).
GRACE_MARGIN = 5


def flag(args: list[str], name: str) -> str | None:
    """The value of ``--name=VALUE`` in ``args``, or None."""
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    assert len(values) <= 1, f"--{name} given {len(values)} times: {args}"
    return values[0] if values else None


def check_hardened_deployment(objects: list[Object]) -> None:
    """Probes, resources, non-root, read-only root, no escalation, no capabilities, seccomp, grace."""
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = container_args(objects)
    listen = flag(args, "listen") or "0.0.0.0:8080"
    assert ports["http"] == int(listen.rsplit(":", 1)[1])
    assert ports["metrics"] == int((flag(args, "metrics-listen") or "0.0.0.0:9090").rsplit(":")[1])
    assert container["livenessProbe"]["httpGet"]["port"] == "http"
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    # The kubelet's SIGKILL must come after the controller's own deadline.
    grace = float(flag(args, "shutdown-grace-period") or 30)
    assert pod["terminationGracePeriodSeconds"] >= grace + GRACE_MARGIN
    # Every writable path is a volume (the root filesystem is read-only).
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "/tmp" in mounts


def check_config_mounted_as_directory(objects: list[Object]) -> None:
    """-c names config.yaml inside the mounted ConfigMap directory, which has no subPath."""
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "config")
    assert "subPath" not in mount and "subPathExpr" not in mount, "a subPath mount never reloads"
    assert flag(container_args(objects), "config") == f"{mount['mountPath']}/config.yaml"
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    assert "items" not in volume["configMap"], "config.yaml must be the ConfigMap's own key"


def effective_config(objects: list[Object], tmp_path: Path) -> str:
    """``dyntoolset config show`` of the mounted config.yaml: exit 0 means it is valid.

    The real CLI with the installed plugins, as the controller loads it at start.
    """
    path = tmp_path / "config.yaml"
    path.write_text(config_text(objects))
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["config", "show", str(path)])
    assert code == 0, f"dyntoolset refuses the configuration:\n{err.getvalue()}"
    return re.sub(r"^# .*\n", "", out.getvalue(), flags=re.MULTILINE)


def check_output_matches_rbac(objects: list[Object], tmp_path: Path) -> None:
    """The output ConfigMap the configuration names is the one the Role pins by name."""
    import yaml

    shown: dict[str, Any] = yaml.safe_load(effective_config(objects, tmp_path))
    output = shown["output"]
    role = next(
        o
        for o in objects
        if o["kind"] == "Role" and any("configmaps" in r["resources"] for r in o["rules"])
    )
    assert role["metadata"]["namespace"] == output["namespace"]
    named = [r for r in role["rules"] if "resourceNames" in r]
    assert named and all(r["resourceNames"] == [output["name"]] for r in named)


def check_lease_matches_rbac(objects: list[Object]) -> None:
    """--lease-name and --lease-namespace are the Lease the leader-election Role pins."""
    args = container_args(objects)
    assert "--leader-elect" in args
    role = next(
        o
        for o in objects
        if o["kind"] == "Role" and any("leases" in r["resources"] for r in o["rules"])
    )
    assert role["metadata"]["namespace"] == flag(args, "lease-namespace")
    named = [r for r in role["rules"] if "resourceNames" in r]
    assert named and all(r["resourceNames"] == [flag(args, "lease-name")] for r in named)


def check_prometheus_rule_is_the_alerts_file(objects: list[Object]) -> None:
    """The PrometheusRule's groups are examples/observability's rules, unchanged."""
    assert one(objects, "PrometheusRule")["spec"]["groups"] == alert_groups()


def check_selectors_select_the_pods(objects: list[Object]) -> None:
    """Service, ServiceMonitor, NetworkPolicy and PDB select the Deployment's Pod labels."""
    labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selectors = []
    for o in objects:
        if o["kind"] == "Service":
            selectors.append(o["spec"]["selector"])
        elif o["kind"] in ("PodDisruptionBudget",):
            selectors.append(o["spec"]["selector"]["matchLabels"])
        elif o["kind"] == "NetworkPolicy":
            selectors.append(o["spec"]["podSelector"]["matchLabels"])
    assert selectors
    for selector in selectors:
        assert selector.items() <= labels.items(), f"{selector} selects no Pod of {labels}"
    service = one(objects, "Service")
    for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"]["labels"].items()
        )
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {
            p["name"] for p in service["spec"]["ports"]
        }


def proxy_rules(objects: list[Object]) -> list[Any]:
    """Rules granting services/proxy, anywhere."""
    return [
        r
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
        for r in o["rules"]
        if "services/proxy" in r["resources"]
    ]


def egress_to_every_pod(objects: list[Object]) -> bool:
    """Whether the NetworkPolicy lets the controller reach Pods in every namespace (direct checks)."""
    policy = one(objects, "NetworkPolicy")
    return any({"namespaceSelector": {}} in rule.get("to", []) for rule in policy["spec"]["egress"])
