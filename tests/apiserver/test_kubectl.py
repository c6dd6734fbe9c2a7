"""kubectl conformance: the real ``kubectl`` binary against the emulator.

Each case runs kubectl as a user would and reads the result back through the
official Python client (or the emulator's store), so what is asserted is the
stored state, not kubectl's own report of it.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from dyntoolset.testing.apiserver import ApiServer

from .conftest import Kubectl, configmap, service

KUSTOMIZE = Path(__file__).parent / "kustomize"


def manifest(path: Path, port: int, name: str = "prometheus") -> Path:
    path.write_text(
        f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: monitoring
  labels:
    app: {name}
spec:
  selector:
    app: {name}
  ports:
    - name: web
      port: {port}
"""
    )
    return path


def ok(result: Any) -> str:
    assert result.returncode == 0, f"kubectl failed: {result.stderr}"
    return str(result.stdout)


def test_apply_twice_with_a_changed_port_leaves_exactly_the_new_port(
    kubectl: Kubectl, v1: client.CoreV1Api, tmp_path: Path
) -> None:
    ok(kubectl.run("create", "namespace", "monitoring"))  # as in a real cluster: first
    path = manifest(tmp_path / "svc.yaml", 9090)
    assert "service/prometheus created" in ok(kubectl.run("apply", "-f", str(path)))
    manifest(path, 9091)
    assert "service/prometheus configured" in ok(kubectl.run("apply", "-f", str(path)))
    stored = v1.read_namespaced_service("prometheus", "monitoring")
    assert [(p.name, p.port, p.target_port) for p in stored.spec.ports] == [("web", 9091, 9091)]
    last = stored.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]
    assert '"port":9091' in last and "9090" not in last
    # A third apply of the same file changes nothing.
    version = stored.metadata.resource_version
    ok(kubectl.run("apply", "-f", str(path)))
    assert (
        v1.read_namespaced_service("prometheus", "monitoring").metadata.resource_version == version
    )


def test_apply_removes_a_field_dropped_from_the_manifest_but_keeps_others_changes(
    kubectl: Kubectl, v1: client.CoreV1Api, tmp_path: Path
) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\n"
        "data: {a: '1', b: '2'}\n"
    )
    ok(kubectl.run("apply", "-f", str(path)))
    # Someone else adds a key; the next apply must not remove it (it never applied it).
    v1.patch_namespaced_config_map("c", "default", {"data": {"theirs": "x"}})
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\ndata: {a: '1'}\n"
    )
    ok(kubectl.run("apply", "-f", str(path)))
    assert v1.read_namespaced_config_map("c", "default").data == {"a": "1", "theirs": "x"}


def test_client_side_validation_refuses_unknown_fields_and_wrong_types(
    kubectl: Kubectl, apiserver: ApiServer, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: default}\n"
        "spec:\n  prots: [{port: 80}]\n  ports: [{port: eighty}]\n"
    )
    result = kubectl.run("apply", "-f", str(path))
    assert result.returncode != 0
    assert 'unknown field "prots"' in result.stderr
    assert "io.k8s.api.core.v1.ServicePort.port" in result.stderr
    assert apiserver.get("services", "default", "bad") is None


def test_apply_server_side_owns_fields_and_conflicts_with_another_manager(
    kubectl: Kubectl, apiserver: ApiServer, v1: client.CoreV1Api, tmp_path: Path
) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\ndata: {a: '1'}\n"
    )
    assert "serverside-applied" in ok(kubectl.run("apply", "--server-side", "-f", str(path)))
    stored = v1.read_namespaced_config_map("c", "default")
    assert [(m.manager, m.operation) for m in stored.metadata.managed_fields] == [
        ("kubectl", "Apply")
    ]
    apiserver.modify(
        "configmaps", "default", "c", lambda cm: cm["data"].update(a="2"), manager="ops"
    )
    result = kubectl.run("apply", "--server-side", "-f", str(path))
    assert result.returncode != 0
    assert "conflict" in result.stderr.lower() and ".data.a" in result.stderr
    ok(kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(path)))
    assert v1.read_namespaced_config_map("c", "default").data == {"a": "1"}


@pytest.mark.parametrize(
    ("patch_type", "patch", "ports"),
    [
        ("strategic", '{"spec":{"ports":[{"port":81,"name":"alt"}]}}', [("http", 80), ("alt", 81)]),
        ("merge", '{"spec":{"ports":[{"port":81,"name":"alt"}]}}', [("alt", 81)]),
        ("json", '[{"op":"replace","path":"/spec/ports/0/port","value":82}]', [("http", 82)]),
    ],
)
def test_patch_in_all_three_types(
    kubectl: Kubectl,
    apiserver: ApiServer,
    v1: client.CoreV1Api,
    patch_type: str,
    patch: str,
    ports: list[tuple[str, int]],
) -> None:
    apiserver.create(service("s", ports=[{"name": "http", "port": 80}]))
    ok(kubectl.run("patch", "svc", "s", "--type", patch_type, "-p", patch))
    stored = v1.read_namespaced_service("s", "default")
    assert [(p.name, p.port) for p in stored.spec.ports] == ports


def test_edit_through_kube_editor(
    kubectl: Kubectl, apiserver: ApiServer, v1: client.CoreV1Api, tmp_path: Path
) -> None:
    apiserver.create(service("s", ports=[{"name": "http", "port": 80}, {"name": "one", "port": 1}]))
    editor = tmp_path / "editor.py"
    editor.write_text(
        "import pathlib, sys\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "path.write_text(path.read_text().replace('port: 1\\n', 'port: 2\\n'))\n"
    )
    result = kubectl.run("edit", "svc", "s", env={"KUBE_EDITOR": f"{sys.executable} {editor}"})
    assert "service/s edited" in ok(result)
    stored = v1.read_namespaced_service("s", "default")
    assert [(p.name, p.port) for p in stored.spec.ports] == [("http", 80), ("one", 2)]
    assert "kubectl-edit" in {m.manager for m in stored.metadata.managed_fields}


def test_label_and_annotate_add_overwrite_and_remove(
    kubectl: Kubectl, apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(configmap("c", labels={"team": "a", "old": "x"}))
    ok(kubectl.run("label", "cm", "c", "tier=web", "old-"))
    ok(kubectl.run("label", "cm", "c", "team=b", "--overwrite"))
    ok(kubectl.run("annotate", "cm", "c", "note=hello"))
    result = kubectl.run("label", "cm", "c", "team=c")  # without --overwrite: refused
    assert result.returncode != 0 and "already has a value" in result.stderr
    meta = v1.read_namespaced_config_map("c", "default").metadata
    assert meta.labels == {"team": "b", "tier": "web"}
    assert meta.annotations == {"note": "hello"}


def test_delete(kubectl: Kubectl, apiserver: ApiServer, v1: client.CoreV1Api) -> None:
    apiserver.create(configmap("c"))
    assert 'configmap "c" deleted' in ok(kubectl.run("delete", "cm", "c"))
    with pytest.raises(ApiException) as caught:
        v1.read_namespaced_config_map("c", "default")
    assert caught.value.status == 404
    result = kubectl.run("delete", "cm", "c")
    assert result.returncode != 0 and 'configmaps "c" not found' in result.stderr


def test_get_shows_the_server_columns_and_wide_adds_the_selector(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    apiserver.create(
        {
            **service("web", "shop"),
            "spec": {
                "selector": {"app": "web"},
                # Several ports need names (the API server's validation).
                "ports": [
                    {"name": "http", "port": 80},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                ],
            },
        }
    )
    stored = apiserver.get("services", "shop", "web")
    assert stored is not None
    plain = ok(kubectl.run("get", "svc", "-A")).splitlines()
    assert plain[0].split() == [
        "NAMESPACE",
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
    ]
    row = next(line.split() for line in plain[1:] if line.split()[1] == "web")
    assert row[:6] == [
        "shop",
        "web",
        "ClusterIP",
        stored["spec"]["clusterIP"],
        "<none>",
        "80/TCP,53/UDP",
    ]
    wide = ok(kubectl.run("get", "svc", "-n", "shop", "-o", "wide")).splitlines()
    assert wide[0].split()[-1] == "SELECTOR"
    assert wide[1].split()[-1] == "app=web"


def test_get_all_includes_services(kubectl: Kubectl, apiserver: ApiServer) -> None:
    # Services are in the "all" category, as on a real server; ConfigMaps are not.
    apiserver.create(service("web", "shop"))
    apiserver.create(configmap("settings", "shop"))
    lines = ok(kubectl.run("get", "all", "-n", "shop")).splitlines()
    assert lines[0].split()[:2] == ["NAME", "TYPE"]
    assert [line.split()[0].removeprefix("service/") for line in lines[1:]] == ["web"]


def test_get_with_chunk_size_pages_through_everything(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    for index in range(5):
        apiserver.create(configmap(f"c{index}", data={"k": "v"}))
    lines = ok(kubectl.run("get", "cm", "-A", "--chunk-size=2")).splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "DATA", "AGE"]
    assert [line.split()[1:3] for line in lines[1:]] == [[f"c{i}", "1"] for i in range(5)]
    pages = apiserver.find_requests(verb="list", resource="configmaps")
    assert [r.query.get("limit") for r in pages] == ["2", "2", "2"]
    assert [bool(r.query.get("continue")) for r in pages] == [False, True, True]


def test_get_watch_prints_changes_as_they_happen(
    kubectl: Kubectl, apiserver: ApiServer, v1: client.CoreV1Api
) -> None:
    apiserver.create(configmap("first", data={"a": "1"}))
    process = kubectl.start("get", "cm", "-n", "default", "-w", "--output-watch-events")
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def next_row() -> list[str]:
        line = lines.get(timeout=30)  # a bound, not a timing assertion
        assert line is not None, (
            f"kubectl get -w ended: {process.stderr.read() if process.stderr else ''}"
        )
        return line.split()

    try:
        assert next_row() == ["EVENT", "NAME", "DATA", "AGE"]
        assert next_row()[:3] == ["ADDED", "first", "1"]
        # The watch is open once the initial list was printed; now change things.
        v1.create_namespaced_config_map("default", configmap("second", data={"a": "1", "b": "2"}))
        assert next_row()[:3] == ["ADDED", "second", "2"]
        v1.patch_namespaced_config_map("first", "default", {"data": {"b": "2", "c": "3"}})
        assert next_row()[:3] == ["MODIFIED", "first", "3"]
        v1.delete_namespaced_config_map("second", "default")
        assert next_row()[:3] == ["DELETED", "second", "2"]
    finally:
        process.terminate()
        process.wait(timeout=10)
        reader.join(timeout=10)


def test_explain_reads_the_openapi_schema(kubectl: Kubectl) -> None:
    # Whitespace-normalised: kubectl 1.27+ reads OpenAPI v3, older ones the v2 protobuf,
    # and they lay the same content out differently.
    out = " ".join(ok(kubectl.run("explain", "service.spec.ports")).split())
    assert "KIND: Service" in out
    assert "ports <[]" in out
    assert "The list of ports that are exposed by this service." in out
    assert "port <integer> -required-" in out
    leaf = " ".join(ok(kubectl.run("explain", "lease.spec.holderIdentity")).split())
    assert "coordination.k8s.io" in leaf and "holderIdentity <string>" in leaf


def test_kustomize_overlay_applied_with_apply_k(
    kubectl: Kubectl, v1: client.CoreV1Api, apiserver: ApiServer
) -> None:
    ok(kubectl.run("create", "namespace", "monitoring"))
    out = ok(kubectl.run("apply", "-k", str(KUSTOMIZE / "overlay")))
    assert "service/team-prometheus created" in out
    stored = v1.read_namespaced_service("team-prometheus", "monitoring")
    assert [(p.name, p.port) for p in stored.spec.ports] == [("web", 9091)]
    assert stored.metadata.labels == {"owner": "observability"}
    assert stored.spec.selector == {"app": "prometheus", "owner": "observability"}
    settings = v1.read_namespaced_config_map("team-settings", "monitoring")
    assert settings.data == {"retention": "15d"}
    generated = [
        cm
        for cm in apiserver.list_objects("configmaps", "monitoring")
        if cm["metadata"]["name"].startswith("team-extra-")
    ]
    assert [cm["data"] for cm in generated] == [{"mode": "overlay"}]
    # Applying the same overlay again writes nothing.
    writes = len(apiserver.writes())
    ok(kubectl.run("apply", "-k", str(KUSTOMIZE / "overlay")))
    assert len(apiserver.writes()) == writes


@pytest.mark.parametrize(("required", "outcome"), [("", "1 skipped"), ("1", "1 error")])
def test_without_kubectl_the_suite_skips_visibly_or_fails_when_required(
    required: str, outcome: str
) -> None:
    """No kubectl: a skip with the reason, or (DYNTOOLSET_REQUIRE_KUBECTL=1, CI) a failure."""
    environment = {
        **{k: v for k, v in os.environ.items() if k not in ("KUBECTL", "PATH")},
        "PATH": str(Path(sys.executable).parent),  # Python, but no kubectl
        "DYNTOOLSET_REQUIRE_KUBECTL": required,
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-q",
            f"{__file__}::test_delete",
        ],
        capture_output=True,
        text=True,
        env=environment,
        cwd=Path(__file__).parents[2],
        timeout=120,
        check=False,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
    assert "no kubectl found" in result.stdout
    assert (result.returncode == 0) == (not required)
