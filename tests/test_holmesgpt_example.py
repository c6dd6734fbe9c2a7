"""examples/holmesgpt/: the Helm values, RBAC and the restart hook.

The hook (``roll_holmes.py``) runs as a user would run it: a subprocess
driving the real ``kubectl`` against the API emulator. The emulator serves
no Deployments, so the Deployment half is proven in two other ways: the
patch the hook sends is applied by the real kubectl to a Deployment manifest
(``kubectl patch --local``), and the roll/no-roll decision is checked with
the hook's one kubectl boundary (``kubectl_json``) replaced by a recorder.
The example toolset file is loaded by HolmesGPT in
``tests/render/test_holmesgpt_example_file.py``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from dyntoolset.config import OutputSettings
from dyntoolset.render.holmesgpt import HolmesGPTRenderer
from dyntoolset.testing.apiserver import ApiServer

from .apiserver.conftest import Kubectl
from .apiserver.conftest import kubectl as kubectl  # the fixture, used by name

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "holmesgpt"
HOOK = EXAMPLE / "roll_holmes.py"
NAMESPACE = "kubernaut-system"
CONFIGMAP = "kubernaut-toolset-config"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hook() -> ModuleType:
    return _load(HOOK, "roll_holmes")


def _run_hook(kubectl: Kubectl, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HOOK), "--kubectl", kubectl.binary, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=kubectl.environment(None),
        check=False,
    )


def _seed(apiserver: ApiServer, data: dict[str, str]) -> None:
    apiserver.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    apiserver.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIGMAP, "namespace": NAMESPACE},
            "data": data,
        }
    )


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the hook against the emulator, through the real kubectl ----------------------


def test_checksum_follows_the_holmesgpt_key_and_ignores_the_others(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    document = "toolsets:\n  prometheus/metrics:\n    enabled: true\n"
    _seed(apiserver, {"custom_toolset.yaml": document, "toolset.json": "{}"})
    first = _run_hook(kubectl, "-n", NAMESPACE, "--print-checksum")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == _sha(document)

    # Another key changing (the Kubernaut document, overrides.yaml) is not HolmesGPT's business.
    apiserver.modify("configmaps", NAMESPACE, CONFIGMAP, lambda o: o["data"].update(a="b"))
    assert _run_hook(kubectl, "-n", NAMESPACE, "--print-checksum").stdout == first.stdout

    changed = document + "  grafana/dashboards:\n    enabled: true\n"
    apiserver.modify(
        "configmaps",
        NAMESPACE,
        CONFIGMAP,
        lambda o: o["data"].update({"custom_toolset.yaml": changed}),
    )
    assert _run_hook(kubectl, "-n", NAMESPACE, "--print-checksum").stdout.strip() == _sha(changed)
    assert [r for r in apiserver.requests if r.verb not in ("get", "list")] == []  # reads only


def test_a_configmap_without_the_holmesgpt_key_is_an_error_naming_it(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    _seed(apiserver, {"toolset.json": "{}"})
    result = _run_hook(kubectl, "-n", NAMESPACE, "--print-checksum")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"roll_holmes: configmap {NAMESPACE}/{CONFIGMAP} has no key 'custom_toolset.yaml' "
        "(keys: ['toolset.json']); is the holmesgpt format in dyntoolset's output.formats?"
    )


def test_a_missing_configmap_is_an_error_with_kubectls_reason(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    result = _run_hook(kubectl, "-n", NAMESPACE, "--deployment", "holmes-holmes")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"roll_holmes: kubectl get configmap {CONFIGMAP} -n {NAMESPACE} failed: "
    )
    assert "not found" in result.stderr
    assert result.stdout == ""


def test_a_deployment_it_cannot_read_is_an_error_and_nothing_is_written(
    apiserver: ApiServer, kubectl: Kubectl
) -> None:
    # The emulator serves no Deployments: kubectl fails as against a server without apps/v1.
    _seed(apiserver, {"custom_toolset.yaml": "toolsets: {}\n"})
    apiserver.clear_requests()
    result = _run_hook(kubectl, "-n", NAMESPACE, "--deployment", "holmes-holmes")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"roll_holmes: kubectl get deployment holmes-holmes -n {NAMESPACE} failed: "
    )
    assert 'resource type "deployment"' in result.stderr
    assert [r for r in apiserver.requests if r.verb not in ("get", "list")] == []


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for args, message in (
        (["-n", NAMESPACE], "--deployment is required"),
        (["-n", NAMESPACE, "--deployment", "h", "--interval", "0"], "--interval must be positive"),
    ):
        result = subprocess.run(
            [sys.executable, str(HOOK), *args], capture_output=True, text=True, check=False
        )
        assert result.returncode == 2, args
        assert message.split(" must")[0] in result.stderr


# -- the Deployment half: the patch through the real kubectl, the decision --------


def test_the_patch_lands_in_the_pod_template_and_keeps_other_annotations(tmp_path: Path) -> None:
    from .apiserver.conftest import kubectl_binary

    binary = kubectl_binary()
    if binary is None:
        reason = "no kubectl found (scripts/test-deps.sh installs Debian's kubernetes-client)"
        if os.environ.get("DYNTOOLSET_REQUIRE_KUBECTL") == "1":
            pytest.fail(f"{reason}, and DYNTOOLSET_REQUIRE_KUBECTL=1 requires one")
        pytest.skip(reason)
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "holmes-holmes", "namespace": NAMESPACE},
                "spec": {
                    "selector": {"matchLabels": {"app": "holmes"}},
                    "template": {
                        "metadata": {
                            "labels": {"app": "holmes"},
                            "annotations": {"checksum/toolset-config": "chart"},
                        },
                        "spec": {"containers": [{"name": "holmes", "image": "holmes"}]},
                    },
                },
            }
        )
    )
    hook = _hook()
    result = subprocess.run(
        [binary, "patch", "--local", "-f", str(deployment), "--type", "merge",
         "-p", hook.roll_patch("c0ffee"), "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    patched = json.loads(result.stdout)
    assert patched["spec"]["template"]["metadata"]["annotations"] == {
        "checksum/toolset-config": "chart",
        hook.ANNOTATION: "c0ffee",
    }
    assert patched["metadata"].get("annotations") is None  # the Deployment itself is untouched


class _Kubectl:
    """Stands in for ``kubectl_json``: serves one ConfigMap and one Deployment, records calls."""

    def __init__(self, document: str, deployed: str | None) -> None:
        self.document = document
        self.deployed = deployed
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, kubectl: str, *args: str) -> Any:
        self.calls.append(args)
        if args[:2] == ("get", "configmap"):
            return {"data": {"custom_toolset.yaml": self.document}}
        if args[:2] == ("get", "deployment"):
            annotations = (
                {} if self.deployed is None else {"dyntoolset.io/toolset-checksum": self.deployed}
            )
            return {"spec": {"template": {"metadata": {"annotations": annotations}}}}
        assert args[:2] == ("patch", "deployment")
        self.deployed = json.loads(args[args.index("-p") + 1])["spec"]["template"]["metadata"][
            "annotations"
        ]["dyntoolset.io/toolset-checksum"]
        return {}


def test_it_rolls_when_the_toolsets_changed_and_only_then(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = _hook()
    fake = _Kubectl("toolsets: {}\n", deployed=None)
    monkeypatch.setattr(hook, "kubectl_json", fake)

    assert hook.sync("kubectl", NAMESPACE, CONFIGMAP, "holmes-holmes") == (
        f"deployment/holmes-holmes rolled: toolsets unknown -> {_sha(fake.document)[:12]}"
    )
    assert fake.deployed == _sha(fake.document)
    patches = [c for c in fake.calls if c[0] == "patch"]
    assert patches == [
        ("patch", "deployment", "holmes-holmes", "-n", NAMESPACE, "--type", "merge",
         "-p", hook.roll_patch(_sha(fake.document)))
    ]  # fmt: skip

    # Unchanged: a second pass writes nothing.
    assert "already runs" in hook.sync("kubectl", NAMESPACE, CONFIGMAP, "holmes-holmes")
    assert [c for c in fake.calls if c[0] == "patch"] == patches

    # Changed: exactly one more roll, to the new checksum.
    old = _sha(fake.document)
    fake.document = "toolsets:\n  grafana/dashboards: {enabled: true}\n"
    assert hook.sync("kubectl", NAMESPACE, CONFIGMAP, "holmes-holmes") == (
        f"deployment/holmes-holmes rolled: toolsets {old[:12]} -> {_sha(fake.document)[:12]}"
    )
    assert len([c for c in fake.calls if c[0] == "patch"]) == 2


# -- the Helm values and RBAC agree with the hook and with dyntoolset -------------


def test_values_mount_dyntoolsets_configmap_where_holmesgpt_is_told_to_look() -> None:
    values = yaml.safe_load((EXAMPLE / "values.yaml").read_text(encoding="utf-8"))
    env = {e["name"]: e["value"] for e in values["additionalEnvVars"]}
    (volume,) = values["additionalVolumes"]
    (mount,) = values["additionalVolumeMounts"]
    assert volume["configMap"]["name"] == OutputSettings().name
    (item,) = volume["configMap"]["items"]
    assert item["key"] == HolmesGPTRenderer.data_key
    assert mount["name"] == volume["name"]
    assert "subPath" not in mount  # a subPath mount never sees an update
    assert env["CUSTOM_TOOLSET_LOCATION"] == f"{mount['mountPath']}/{item['path']}"
    # Beside the chart's own mount, not over it (it holds model_list.yaml too).
    assert not mount["mountPath"].rstrip("/").endswith("/etc/holmes/config")
    assert _hook().ANNOTATION in values["podAnnotations"]


def test_the_hooks_role_allows_exactly_what_it_calls() -> None:
    documents = list(yaml.safe_load_all((EXAMPLE / "rbac.yaml").read_text(encoding="utf-8")))
    (role,) = [d for d in documents if d["kind"] == "Role"]
    rules = {
        (r["apiGroups"][0], r["resources"][0]): (r["resourceNames"], r["verbs"])
        for r in role["rules"]
    }
    assert rules == {
        ("", "configmaps"): ([OutputSettings().name], ["get"]),
        ("apps", "deployments"): (["holmes-holmes"], ["get", "patch"]),
    }
    assert role["metadata"]["namespace"] == OutputSettings().namespace
