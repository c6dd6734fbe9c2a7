"""Reading Service manifests from files, directories and stdin."""

from __future__ import annotations

import io
import json

import pytest

from dyntoolset.manifests import read_manifests
from dyntoolset.snapshot import SnapshotError, service_from_object

SVC = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "prom", "namespace": "monitoring", "labels": {"app": "prometheus"}},
    "spec": {
        "clusterIP": "10.0.0.1",
        "ports": [{"name": "web", "port": 9090, "appProtocol": "http"}],
    },
}


def test_multi_document_yaml_and_lists(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n"
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "list.json").write_text(
        json.dumps({"kind": "ServiceList", "items": [SVC, SVC]})
    )
    (tmp_path / "ignored.txt").write_text("not a manifest")
    report = read_manifests([str(tmp_path)])
    assert report.errors == []
    assert [(o.source.rsplit("/", 1)[1], o.position, o.kind) for o in report.objects] == [
        ("a.yaml", "document 1", "Service"),
        ("a.yaml", "document 3", "Deployment"),
        ("list.json", "document 1 items[0]", "Service"),
        ("list.json", "document 1 items[1]", "Service"),
    ]


def test_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"kind": "List", "items": [SVC]})))
    report = read_manifests(["-"])
    assert [(o.source, o.kind) for o in report.objects] == [("<stdin>", "Service")]


def test_malformed_documents_are_reported_with_file_and_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n---\nkind: [\n")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    good = tmp_path / "good.yaml"
    good.write_text(json.dumps(SVC))
    report = read_manifests([str(bad), str(scalar), str(tmp_path / "missing.yaml"), str(good)])
    assert [str(e) for e in report.errors] == [
        f"{bad}:line 6 column 1: invalid YAML: expected the node content, but found '<stream end>'",
        f"{scalar}:document 1: expected a Kubernetes object, got str",
        f"{tmp_path / 'missing.yaml'}: no such file or directory",
    ]
    assert [o.obj["metadata"]["name"] for o in report.objects] == ["ok", "prom"]


def test_non_utf8_file_is_an_error(tmp_path):
    (tmp_path / "x.yaml").write_bytes(b"\xff\xfe")
    report = read_manifests([str(tmp_path / "x.yaml")])
    assert "not UTF-8 text" in str(report.errors[0])


def test_service_snapshot_fields():
    svc = service_from_object(SVC)
    assert svc.key == "monitoring/prom"
    assert svc.labels == {"app": "prometheus"}
    assert svc.ports[0].port == 9090 and svc.ports[0].app_protocol == "http"
    assert not svc.is_headless
    assert service_from_object(
        {"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}}
    ).is_headless
    assert service_from_object({"metadata": {"name": "h"}}).namespace == "default"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({}, "metadata must be a mapping"),
        ({"metadata": {}}, "metadata.name is required"),
        (
            {"metadata": {"name": "a", "labels": {"a": 1}}},
            "metadata.labels['a'] must be a string, got 1",
        ),
        (
            {"metadata": {"name": "a", "annotations": {"x": "ok", "y": None}}},
            "metadata.annotations['y'] must be a string, got None",
        ),
        (
            {"metadata": {"name": "a", "annotations": ["x"]}},
            "metadata.annotations must be a mapping of strings to strings, got ['x']",
        ),
        ({"metadata": {"name": "a"}, "spec": {"ports": {}}}, "spec.ports must be a list"),
        (
            {"metadata": {"name": "a"}, "spec": {"ports": [{"port": "80"}]}},
            "spec.ports[0].port must be an integer 1-65535, got '80'",
        ),
        (
            {"metadata": {"name": "a"}, "spec": {"ports": [{"port": 0}]}},
            "spec.ports[0].port must be an integer 1-65535, got 0",
        ),
        ({"metadata": {"name": "a"}, "spec": []}, "spec must be a mapping"),
    ],
)
def test_bad_service_objects(obj, message):
    with pytest.raises(SnapshotError) as info:
        service_from_object(obj)
    assert str(info.value) == message


def test_oversized_manifests_are_refused(tmp_path, monkeypatch):
    import dyntoolset.manifests as manifests

    monkeypatch.setattr(manifests, "MAX_MANIFEST_BYTES", 10)
    (tmp_path / "big.yaml").write_text("kind: Service\nmetadata: {name: a}\n")
    report = read_manifests([str(tmp_path / "big.yaml")])
    assert [str(e) for e in report.errors] == [f"{tmp_path / 'big.yaml'}: larger than 10 bytes"]
    assert report.objects == []


def _errors(tmp_path, name: str, text: str) -> tuple[list[str], list[str]]:
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "good.json").write_text(json.dumps(SVC))
    report = read_manifests([str(path), str(tmp_path / "good.json")])
    names = [o.obj["metadata"]["name"] for o in report.objects]
    return [str(e).removeprefix(f"{path}:") for e in report.errors], names


def test_deeply_nested_manifest_is_an_error_not_a_recursion_error(tmp_path):
    errors, names = _errors(tmp_path, "deep.yaml", "[" * 5000 + "]" * 5000)
    assert errors == ["line 1 column 101: invalid YAML: nested deeper than 100 levels"]
    assert names == ["prom"]  # the other files still load


def test_duplicate_keys_in_a_manifest_are_errors(tmp_path):
    # kubectl refuses these too; silently taking the last 'kind' could turn
    # any object into a Service.
    errors, names = _errors(
        tmp_path, "dup.yaml", "kind: Service\nmetadata: {name: a}\nkind: ConfigMap\n"
    )
    assert errors == ["line 3 column 1: invalid YAML: found duplicate key 'kind'"]
    assert names == ["prom"]


def _list_bomb(levels: int) -> str:
    lines = [
        "s: &s {kind: Service, metadata: {name: a}}",
        "l0: &l0 {kind: List, items: [" + ", ".join(["*s"] * 10) + "]}",
    ]
    lines += [
        f"l{i}: &l{i} {{kind: List, items: [" + ", ".join([f"*l{i - 1}"] * 10) + "]}"
        for i in range(1, levels)
    ]
    lines.append(f"kind: List\nitems: [*l{levels - 1}]")
    return "\n".join(lines) + "\n"


def test_a_list_bomb_is_refused_by_the_loader(tmp_path):
    # 700 bytes that would otherwise expand to 10**8 Services.
    errors, names = _errors(tmp_path, "bomb.yaml", _list_bomb(8))
    assert errors == [
        "line 5 column 30: invalid YAML: aliases expand this document by more than 10000 "
        "nodes (a 'billion laughs' document); write the values out instead"
    ]
    assert names == ["prom"]  # only the other file


def test_a_list_repeated_through_yaml_aliases_is_not_expanded_again(tmp_path):
    # Within the expansion bound, a repeated List is still read only once.
    errors, names = _errors(tmp_path, "bomb.yaml", _list_bomb(2))
    assert errors[0] == (
        "document 1 items[0] items[1]: "
        "this List is repeated (through a YAML alias); it is read only once"
    )
    assert len(errors) == 9  # every repetition is named, nothing expanded twice
    assert names == ["a"] * 10 + ["prom"]


def test_list_items_must_be_a_list(tmp_path):
    (tmp_path / "empty.json").write_text('{"kind": "List", "items": null}')
    (tmp_path / "bad.json").write_text('{"kind": "ServiceList", "items": {"a": 1}}')
    report = read_manifests([str(tmp_path / "empty.json"), str(tmp_path / "bad.json")])
    assert report.objects == []
    assert [str(e) for e in report.errors] == [
        f"{tmp_path / 'bad.json'}:document 1: ServiceList items must be a list, got dict"
    ]


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (
            {"name": "x@169.254.169.254/#", "namespace": "mon"},
            "metadata.name 'x@169.254.169.254/#' is not a valid Service name: lowercase "
            "letters, digits and '-', starting with a letter, at most 63 characters",
        ),
        (
            {"name": "a" * 64},
            "metadata.name '" + "a" * 56 + "... is not a valid Service name: lowercase "
            "letters, digits and '-', starting with a letter, at most 63 characters",
        ),
        (
            {"name": "prom", "namespace": "Bad NS!"},
            "metadata.namespace 'Bad NS!' is not a valid namespace: lowercase letters, "
            "digits and '-', at most 63 characters",
        ),
        (
            {"name": "prom", "namespace": "mon\nx"},
            "metadata.namespace 'mon\\nx' is not a valid namespace: lowercase letters, "
            "digits and '-', at most 63 characters",
        ),
    ],
)
def test_names_that_kubernetes_would_refuse_are_invalid(meta, message):
    # The name and namespace become the endpoint's host name: unchecked, a
    # manifest could point the generated toolset anywhere (here at the cloud
    # metadata address, through 'user@host' in the URL).
    with pytest.raises(SnapshotError) as info:
        service_from_object({"metadata": meta, "spec": {"ports": [{"port": 80}]}})
    assert str(info.value) == message


def test_names_kubernetes_accepts_are_valid():
    svc = service_from_object({"metadata": {"name": "a" * 63, "namespace": "0-ns"}})
    assert svc.key == "0-ns/" + "a" * 63


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": {"a": 1}}, "spec.type must be a string, got {'a': 1}"),
        ({"clusterIP": 7}, "spec.clusterIP must be a string, got 7"),
        ({"ports": [{"port": 80, "name": 5}]}, "spec.ports[0].name must be a string, got 5"),
        (
            {"ports": [{"port": 80, "protocol": ["TCP"]}]},
            "spec.ports[0].protocol must be a string, got ['TCP']",
        ),
        (
            {"ports": [{"port": 80, "appProtocol": True}]},
            "spec.ports[0].appProtocol must be a string, got True",
        ),
    ],
)
def test_fields_of_the_wrong_type_are_invalid_not_stringified(spec, message):
    # str() used to turn these into "{'a': 1}", "7" or "['TCP']" silently.
    with pytest.raises(SnapshotError) as info:
        service_from_object({"metadata": {"name": "a"}, "spec": spec})
    assert str(info.value) == message


def test_size_cap_holds_for_devices_and_pipes(monkeypatch):
    # stat() says 0 bytes for /dev/zero or a pipe: reading it whole never ended.
    import dyntoolset.manifests as manifests

    monkeypatch.setattr(manifests, "MAX_MANIFEST_BYTES", 10)
    report = read_manifests(["/dev/zero"])
    assert [str(e) for e in report.errors] == ["/dev/zero: larger than 10 bytes"]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"#" * 11)))
    assert [str(e) for e in read_manifests(["-"]).errors] == ["<stdin>: larger than 10 bytes"]


def test_non_utf8_stdin_is_an_error_not_a_crash(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe")))
    report = read_manifests(["-"])
    assert [str(e) for e in report.errors] == ["<stdin>: not UTF-8 text: invalid start byte"]


def test_control_characters_in_a_manifest_are_an_error(tmp_path):
    errors, names = _errors(tmp_path, "ctl.yaml", "kind: Service\nmetadata: {name: \x00}\n")
    assert errors == [
        "line 2 column 18: invalid YAML: unacceptable character #x0000: "
        "special characters are not allowed"
    ]
    assert names == ["prom"]


def test_json_is_read_like_yaml(tmp_path):
    # JSON (what 'kubectl get -o json' prints) takes a fast path; it must give
    # the same objects, BOM and CRLF included.
    listing = {"apiVersion": "v1", "kind": "List", "items": [SVC, {**SVC, "kind": "Endpoints"}]}
    text = json.dumps(listing, indent=2).replace("\n", "\r\n")
    (tmp_path / "a.json").write_text("\ufeff" + text, encoding="utf-8")
    (tmp_path / "a.yaml").write_text(text)  # JSON is YAML: the same text, read as YAML
    fast = read_manifests([str(tmp_path / "a.json")])
    assert fast.errors == []
    assert [o.obj for o in fast.objects] == listing["items"]
    report = read_manifests([str(tmp_path / "a.yaml")])
    assert [o.obj for o in report.objects] == [o.obj for o in fast.objects]
    assert [o.position for o in fast.objects] == ["document 1 items[0]", "document 1 items[1]"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '{"kind": "Service",\n "metadata": {"name": "a"},\n "kind": "ConfigMap"}',
            "line 3 column 2: invalid YAML: found duplicate key 'kind'",
        ),
        ("[" * 3000 + "]" * 3000, "line 1 column 101: invalid YAML: nested deeper than 100 levels"),
        ("[" * 150 + "]" * 150, "line 1 column 101: invalid YAML: nested deeper than 100 levels"),
        (
            '{"kind": "List", "items": '
            + '[{"kind": "List", "items": ' * 60
            + "[]"
            + "}]" * 60
            + "}",
            "line 1 column 1351: invalid YAML: nested deeper than 100 levels",
        ),
        (
            '{"kind": "Service", "metadata": ',
            "line 1 column 33: invalid YAML: expected the node content, but found '<stream end>'",
        ),
    ],
)
def test_bad_json_is_reported_as_precisely_as_yaml(tmp_path, text, error):
    errors, names = _errors(tmp_path, "bad.json", text)
    assert errors == [error]
    assert names == ["prom"]


def test_an_empty_path_is_an_error_not_the_current_directory(tmp_path, monkeypatch):
    # Path("") is ".": 'discover -f "$UNSET"' read every manifest below the
    # working directory.
    (tmp_path / "svc.json").write_text(json.dumps(SVC))
    monkeypatch.chdir(tmp_path)
    report = read_manifests([""])
    assert report.objects == []
    assert [str(e) for e in report.errors] == ["'': empty path"]


def test_a_configmap_mounted_directory_is_read_once(tmp_path):
    # A mounted ConfigMap holds each file twice: the real one under a hidden
    # '..<timestamp>' directory and a symlink through '..data'. Hidden
    # entries are skipped, so each manifest is read once.
    mount = tmp_path / "mount"
    (mount / "..2026_01_01").mkdir(parents=True)
    (mount / "..2026_01_01" / "svc.json").write_text(json.dumps(SVC))
    (mount / "..data").symlink_to("..2026_01_01")
    (mount / "svc.json").symlink_to("..data/svc.json")
    (mount / ".hidden.yaml").write_text("kind: Service\nmetadata: {name: hidden}\n")
    report = read_manifests([str(mount)])
    assert [(o.source, o.obj["metadata"]["name"]) for o in report.objects] == [
        (str(mount / "svc.json"), "prom")
    ]
    # A hidden path named explicitly is still read.
    assert len(read_manifests([str(mount / ".hidden.yaml")]).objects) == 1
