"""The bounded YAML loader: expansion, recursion, depth, duplicate keys, YAML 1.2 integers.

Every bound is checked with both parsers (libyaml's C parser, used when
PyYAML has it, and the pure-Python one), and at every entry point that reads
untrusted YAML: the configuration, manifests, ``--existing`` and
``overrides.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dyntoolset import boundedyaml, manifests
from dyntoolset.boundedyaml import BoundedLoader, load_bounded_yaml
from dyntoolset.cli import main
from dyntoolset.config import parse_config
from dyntoolset.manifests import read_manifests

LOADERS = sorted({BoundedLoader, boundedyaml._PythonBoundedLoader}, key=lambda cls: cls.__name__)


def billion_laughs(levels: int = 8, key: str = "enabled", indent: str = "") -> str:
    """``levels`` levels of ten aliases each (10**levels nodes), in about 500 bytes."""
    lines = [f"{indent}a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"{indent}a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]"
        for i in range(1, levels + 1)
    ]
    lines.append(f"{indent}{key}: *a{levels}")
    return "\n".join(lines) + "\n"


def load_with(cls: Any, text: str) -> list[Any]:
    loader = cls(text)
    try:
        return list(loader.documents())
    finally:
        loader.dispose()


def error_with(cls: Any, text: str) -> str:
    with pytest.raises(yaml.YAMLError) as info:
        load_with(cls, text)
    mark = info.value.problem_mark  # type: ignore[attr-defined]
    return f"{mark.line + 1}:{mark.column + 1}: {info.value.problem}"  # type: ignore[attr-defined]


EXPANSION = "aliases expand this document by more than 10000 nodes"


def test_the_c_parser_is_used_when_pyyaml_has_it() -> None:
    assert issubclass(BoundedLoader, yaml.CSafeLoader) is bool(yaml.__with_libyaml__)
    assert boundedyaml.WITH_LIBYAML is bool(yaml.__with_libyaml__)


@pytest.mark.parametrize("loader", LOADERS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(
    ("text", "error"),
    [
        (billion_laughs(), f"4:45: {EXPANSION}"),  # at the alias crossing the bound
        # Within the bound: two levels of ten aliases add 2,310 nodes.
        (billion_laughs(2), None),
        ("toolsets: &t {x/y: {config: *t}}", "1:29: alias *t refers to a node that contains it"),
        ("a: &a [1, *a]", "1:11: alias *a refers to a node that contains it"),
        ("a: &m {b: 1, <<: *m}", "1:18: alias *m refers to a node that contains it"),
        ("a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]", "more than 100 YAML aliases"),
        ("[" * 150 + "]" * 150, "1:101: nested deeper than 100 levels"),
        ("- " * 150 + "x", "1:201: nested deeper than 100 levels"),
        ("[" * 100 + "]" * 100, None),
        ("a: 1\nb: 2\na: 3\n", "3:1: found duplicate key 'a'"),
    ],
)
def test_bounds_hold_with_either_parser(loader: Any, text: str, error: str | None) -> None:
    if error is None:
        assert load_with(loader, text)
    else:
        assert error in error_with(loader, text)


@pytest.mark.parametrize("loader", LOADERS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_huge_nesting_never_reaches_a_recursive_composer(loader: Any, depth: int) -> None:
    # libyaml's composer recurses in C: checking depth on the events first
    # means it never sees more than 100 levels.
    for text in ("[" * depth + "]" * depth, "- " * depth + "x", "{a: " * depth + "}" * depth):
        assert "nested deeper than 100 levels" in error_with(loader, text)


@pytest.mark.parametrize("loader", LOADERS, ids=lambda cls: cls.__name__)
def test_integers_follow_yaml_1_2(loader: Any) -> None:
    [data] = load_with(
        loader, "a: 1:20\nb: 010\nc: 0o17\nd: 0x1f\ne: 1_000\nf: 0b11\ng: -3\nh: 1:20.5\ni: 2.5\n"
    )
    assert data == {
        "a": "1:20",  # not 80 (YAML 1.1 base 60)
        "b": 10,  # not 8
        "c": 15,
        "d": 31,
        "e": "1_000",
        "f": "0b11",
        "g": -3,
        "h": "1:20.5",
        "i": 2.5,
    }


def test_more_than_one_document_where_one_is_expected() -> None:
    data, problems = load_bounded_yaml("a: 1\n---\nb: 2\n")
    assert data is None
    assert [str(p) for p in problems] == [
        "$: invalid YAML at line 2, column 1: but found another document"
    ]


# -- every entry point --------------------------------------------------------


def test_configuration_refuses_an_alias_bomb_at_its_position() -> None:
    raw, problems = parse_config(billion_laughs(key="resync_interval"))
    assert raw is None
    assert [str(p) for p in problems] == [
        f"$: invalid YAML at line 4, column 45: {EXPANSION} (a 'billion laughs' document); "
        f"write the values out instead"
    ]


def test_a_manifest_with_an_alias_bomb_in_a_label_is_refused(tmp_path: Path) -> None:
    text = (
        "kind: Service\nmetadata:\n  name: prom\n  labels:\n"
        + billion_laughs(key="app", indent="    ")
        + "spec: {ports: [{port: 80}]}\n"
    )
    (tmp_path / "svc.yaml").write_text(text)
    report = read_manifests([str(tmp_path / "svc.yaml")])
    assert report.objects == []
    assert [str(e) for e in report.errors] == [
        f"{tmp_path / 'svc.yaml'}:line 8 column 49: invalid YAML: {EXPANSION} "
        f"(a 'billion laughs' document); write the values out instead"
    ]


def test_a_port_written_in_base_60_is_not_read_as_a_number(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "svc.yaml").write_text(
        "kind: Service\nmetadata: {name: prom}\nspec: {ports: [{port: 1:20}]}\n"
    )
    code = main(["discover", "-f", str(tmp_path / "svc.yaml")])
    err = capsys.readouterr().err
    assert code == 1
    assert "spec.ports[0].port must be an integer 1-65535, got '1:20'" in err


def _run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "prometheus", "namespace": "monitoring"},
    "spec": {"ports": [{"name": "web", "port": 9090}]},
}


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch) -> str:
    """The example cluster, read with the built-in detectors only."""
    monkeypatch.setenv("DYNTOOLSET_LOAD_PLUGINS", "")
    return str(Path(__file__).parent.parent / "examples" / "cluster")


def _existing(tmp_path: Path, data_text: str) -> str:
    path = tmp_path / "cm.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kubernaut-toolset-config\n"
        "  namespace: kubernaut-system\ndata:\n" + data_text
    )
    return str(path)


def test_an_existing_configmap_with_an_alias_bomb_is_refused(
    tmp_path: Path, services: str, capsys: Any
) -> None:
    existing = _existing(tmp_path, billion_laughs(key="notes.txt", indent="  "))
    code, out, err = _run(capsys, "discover", "-f", services, "--existing", existing)
    assert (code, out) == (1, "")
    assert f"{existing}:line 10 column 47: invalid YAML: {EXPANSION}" in err


@pytest.mark.parametrize(
    "overrides",
    [
        # A self-referencing overrides.yaml (once a RecursionError and no output).
        "toolsets: &t {x/y: {config: *t}}",
        # An alias bomb in a toolset's config.
        "toolsets:\n  x/y:\n    config:\n" + billion_laughs(indent="      "),
    ],
    ids=["recursive", "billion-laughs"],
)
def test_overrides_that_cannot_be_read_are_left_out_and_the_rest_is_written(
    tmp_path: Path, services: str, capsys: Any, overrides: str
) -> None:
    block = "  overrides.yaml: |\n" + "".join(f"    {line}\n" for line in overrides.splitlines())
    existing = _existing(tmp_path, block)
    code, out, err = _run(capsys, "discover", "-f", services, "--existing", existing)
    assert code == 0
    configmap = yaml.safe_load(out)
    assert configmap["data"]["overrides.yaml"].rstrip("\n") == overrides.rstrip("\n")  # kept
    holmes = yaml.safe_load(configmap["data"]["custom_toolset.yaml"])
    assert "prometheus/metrics" in holmes["toolsets"]  # the rest is written
    assert "x/y" not in holmes["toolsets"]
    assert "warning: overrides.yaml: $: invalid YAML at line " in err


# -- the YAML size cap --------------------------------------------------------


def test_large_yaml_is_refused_with_advice_and_json_keeps_the_larger_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manifests, "MAX_YAML_MANIFEST_BYTES", 200)
    listing = {"apiVersion": "v1", "kind": "List", "items": [SERVICE] * 3}
    (tmp_path / "svc.json").write_text(json.dumps(listing))
    (tmp_path / "svc.yaml").write_text(yaml.safe_dump(listing))
    json_report = read_manifests([str(tmp_path / "svc.json")])
    assert json_report.errors == [] and len(json_report.objects) == 3
    yaml_report = read_manifests([str(tmp_path / "svc.yaml")])
    assert yaml_report.objects == []
    [error] = [str(e) for e in yaml_report.errors]
    assert error.startswith(f"{tmp_path / 'svc.yaml'}: ")
    assert "characters of YAML" in error and "more than the 200 read as YAML" in error
    assert "use 'kubectl get ... -o json'" in error
