"""The output ConfigMap: creation, merge, overrides, drift, no-op, size limit."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dyntoolset.config import OutputSettings
from dyntoolset.configmap import (
    CONTENT_HASH,
    GENERATED_AT,
    KEY_HASHES,
    LABELS,
    MAX_DATA_BYTES,
    configmap_problems,
    merge_configmap,
)
from dyntoolset.errors import DocumentTooLargeError, InvalidConfigMapError

OUT = OutputSettings()
T0, T1 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
OVERRIDES = "toolsets:\n  prometheus/metrics:\n    enabled: false   # keep: 'byte for byte'\n"


def test_create_when_missing():
    result = merge_configmap({"toolsets.yaml": "a: 1\n"}, OUT, None, T0)
    cm = result.configmap
    assert result.created and result.changed and result.drifted == ()
    assert cm["metadata"]["name"] == "kubernaut-toolset-config"
    assert cm["metadata"]["namespace"] == "kubernaut-system"
    assert cm["metadata"]["labels"] == LABELS
    assert cm["metadata"]["annotations"][GENERATED_AT] == T0
    assert cm["metadata"]["annotations"][CONTENT_HASH].startswith("sha256:")
    assert json.loads(cm["metadata"]["annotations"][KEY_HASHES]).keys() == {"toolsets.yaml"}
    assert cm["data"] == {"toolsets.yaml": "a: 1\n"}


def existing_with_foreign_content():
    first = merge_configmap(
        {"toolsets.yaml": "a: 1\n", "toolset.json": "{}"}, OUT, None, T0
    ).configmap
    first["metadata"]["resourceVersion"] = "42"
    first["metadata"]["labels"]["team"] = "sre"
    first["metadata"]["annotations"]["note"] = "hands off"
    first["data"]["overrides.yaml"] = OVERRIDES
    first["data"]["notes.txt"] = "foreign"
    return first


def test_unchanged_input_is_a_no_op_and_keeps_the_timestamp():
    existing = existing_with_foreign_content()
    again = merge_configmap({"toolsets.yaml": "a: 1\n", "toolset.json": "{}"}, OUT, existing, T1)
    assert not again.changed
    assert again.configmap["metadata"]["annotations"][GENERATED_AT] == T0
    assert again.configmap == {**existing}


def test_update_keeps_overrides_foreign_keys_labels_and_annotations():
    existing = existing_with_foreign_content()
    result = merge_configmap({"toolsets.yaml": "a: 2\n", "toolset.json": "{}"}, OUT, existing, T1)
    cm = result.configmap
    assert result.changed and not result.created and result.drifted == ()
    assert cm["data"]["overrides.yaml"] == OVERRIDES
    assert cm["data"]["notes.txt"] == "foreign"
    assert cm["data"]["toolsets.yaml"] == "a: 2\n"
    assert cm["metadata"]["labels"]["team"] == "sre"
    assert cm["metadata"]["annotations"]["note"] == "hands off"
    assert cm["metadata"]["annotations"][GENERATED_AT] == T1
    assert cm["metadata"]["resourceVersion"] == "42"  # replace needs it


def test_edited_generated_key_is_drift_and_restored():
    existing = existing_with_foreign_content()
    existing["data"]["toolsets.yaml"] = "a: hacked\n"
    result = merge_configmap({"toolsets.yaml": "a: 1\n", "toolset.json": "{}"}, OUT, existing, T1)
    assert result.drifted == ("toolsets.yaml",) and result.changed
    assert result.configmap["data"]["toolsets.yaml"] == "a: 1\n"
    assert result.configmap["data"]["overrides.yaml"] == OVERRIDES


def test_deleted_generated_key_is_drift_and_restored():
    existing = existing_with_foreign_content()
    del existing["data"]["toolset.json"]
    result = merge_configmap({"toolsets.yaml": "a: 1\n", "toolset.json": "{}"}, OUT, existing, T1)
    assert result.drifted == ("toolset.json",)
    assert result.configmap["data"]["toolset.json"] == "{}"


def test_an_ordinary_update_is_not_drift():
    existing = existing_with_foreign_content()
    result = merge_configmap({"toolsets.yaml": "b: 1\n", "toolset.json": "[]"}, OUT, existing, T1)
    assert result.drifted == ()


def test_keys_of_disabled_formats_are_removed_unless_edited():
    existing = existing_with_foreign_content()
    result = merge_configmap({"toolsets.yaml": "a: 1\n"}, OUT, existing, T1)
    assert result.removed == ("toolset.json",)
    assert "toolset.json" not in result.configmap["data"]
    existing["data"]["toolset.json"] = '{"edited": true}'
    kept = merge_configmap({"toolsets.yaml": "a: 1\n"}, OUT, existing, T1)
    assert kept.removed == () and kept.configmap["data"]["toolset.json"] == '{"edited": true}'


def test_keys_written_before_dyntoolset_managed_them_are_adopted_without_drift():
    v1 = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kubernaut-toolset-config", "namespace": "kubernaut-system"},
        "data": {"toolset.json": '{"tools": []}', "overrides.yaml": OVERRIDES},
    }
    result = merge_configmap({"toolset.json": '{"tools": [1]}'}, OUT, v1, T0)
    assert result.drifted == () and result.changed
    assert result.configmap["data"]["overrides.yaml"] == OVERRIDES


@pytest.mark.parametrize("garbage", ["not json", '["list"]', '{"k": 1}'])
def test_malformed_ownership_annotation_is_tolerated(garbage):
    existing = existing_with_foreign_content()
    existing["metadata"]["annotations"][KEY_HASHES] = garbage
    result = merge_configmap({"toolsets.yaml": "a: 1\n", "toolset.json": "{}"}, OUT, existing, T1)
    assert result.drifted == ()
    assert json.loads(result.configmap["metadata"]["annotations"][KEY_HASHES]).keys() == {
        "toolsets.yaml",
        "toolset.json",
    }


def test_overrides_yaml_is_never_generated():
    with pytest.raises(ValueError, match="belongs to the operator"):
        merge_configmap({"overrides.yaml": "x"}, OUT, None, T0)


def test_over_one_mebibyte_is_refused_whole():
    with pytest.raises(DocumentTooLargeError) as info:
        merge_configmap({"toolsets.yaml": "x" * MAX_DATA_BYTES}, OUT, None, T0)
    assert info.value.size == MAX_DATA_BYTES + len("toolsets.yaml")
    assert "the previous ConfigMap is kept" in str(info.value)
    existing = existing_with_foreign_content()
    existing["data"]["notes.txt"] = "y" * (MAX_DATA_BYTES - 100)
    with pytest.raises(DocumentTooLargeError):  # foreign data counts too
        merge_configmap({"toolsets.yaml": "a: 1\n", "toolset.json": "{}"}, OUT, existing, T1)


@given(
    st.dictionaries(
        st.sampled_from(["toolsets.yaml", "toolset.json", "x.txt"]), st.text(max_size=50)
    )
)
def test_merging_twice_is_idempotent(generated):
    first = merge_configmap(generated, OUT, existing_with_foreign_content(), T0)
    second = merge_configmap(generated, OUT, first.configmap, T1)
    assert not second.changed and second.drifted == ()
    assert second.configmap == first.configmap
    assert yaml.safe_load(yaml.safe_dump(second.configmap)) == second.configmap


@pytest.mark.parametrize("immutable", [True, False])
def test_binary_data_and_immutable_flag_of_the_existing_object_are_kept(immutable):
    existing = existing_with_foreign_content()
    existing["binaryData"] = {"logo.png": "iVBORw0KGgo="}
    existing["immutable"] = immutable
    result = merge_configmap({"toolsets.yaml": "a: 2\n", "toolset.json": "{}"}, OUT, existing, T1)
    assert result.changed
    assert result.configmap["binaryData"] == {"logo.png": "iVBORw0KGgo="}
    # Kept exactly as the owner set it (False included): the merge never
    # changes fields it does not own.
    assert result.configmap["immutable"] is immutable


def test_binary_data_and_immutable_flag_are_not_invented():
    result = merge_configmap({"toolsets.yaml": "a: 2\n"}, OUT, existing_with_foreign_content(), T1)
    assert "binaryData" not in result.configmap and "immutable" not in result.configmap


def _set(*path_and_value):
    *path, key, value = path_and_value

    def mutate(cm):
        target = cm
        for part in path:
            target = target[part]
        target[key] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (_set("data", [1, 2]), "$.data: expected a mapping of strings to strings, got [1, 2]"),
        (_set("data", "overrides.yaml", 5), "$.data['overrides.yaml']: expected a string, got 5"),
        (_set("data", "x.txt", None), "$.data['x.txt']: expected a string, got None"),
        (_set("metadata", 5), "$.metadata: expected a mapping, got 5"),
        (
            _set("metadata", "labels", ["team"]),
            "$.metadata.labels: expected a mapping of strings to strings, got ['team']",
        ),
        (
            _set("metadata", "annotations", GENERATED_AT, 7),
            "$.metadata.annotations['kubernaut.io/generated-at']: expected a string, got 7",
        ),
        (
            _set("metadata", "annotations", KEY_HASHES, {"a": "b"}),
            "$.metadata.annotations['dyntoolset.io/generated-keys']: expected a string, "
            "got {'a': 'b'}",
        ),
        (
            _set("binaryData", "x"),
            "$.binaryData: expected a mapping of strings to strings, got 'x'",
        ),
    ],
)
def test_an_existing_configmap_of_the_wrong_shape_is_refused_with_its_path(mutate, problem):
    # Hand-edited or hand-written ConfigMaps used to crash the merge with an
    # AttributeError or TypeError deep inside it.
    existing = existing_with_foreign_content()
    mutate(existing)
    with pytest.raises(InvalidConfigMapError) as info:
        merge_configmap({"toolsets.yaml": "a: 1\n"}, OUT, existing, T1)
    assert info.value.problems == (problem,)
    assert str(info.value) == f"the existing ConfigMap cannot be merged into: {problem}"
    assert configmap_problems(existing) == [problem]


def test_an_existing_configmap_that_is_not_a_mapping_is_refused():
    with pytest.raises(InvalidConfigMapError, match=r"\$: expected a mapping, got \['x'\]"):
        merge_configmap({"toolsets.yaml": "a: 1\n"}, OUT, ["x"], T1)  # type: ignore[arg-type]


def test_null_data_labels_and_annotations_mean_empty():
    existing = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kubernaut-toolset-config", "labels": None, "annotations": None},
        "data": None,
    }
    assert configmap_problems(existing) == []
    result = merge_configmap({"toolsets.yaml": "a: 1\n"}, OUT, existing, T0)
    assert result.configmap["data"] == {"toolsets.yaml": "a: 1\n"}
    assert result.configmap["metadata"]["labels"] == LABELS
    assert result.changed and result.drifted == ()


_KEY = st.from_regex(r"[-._a-zA-Z0-9]{1,20}", fullmatch=True)
_GENERATED_KEYS = ["custom_toolset.yaml", "toolset.json", "lines.txt"]
_OURS = {GENERATED_AT, CONTENT_HASH, KEY_HASHES}


@given(
    before=st.dictionaries(st.sampled_from(_GENERATED_KEYS), st.text(max_size=30)),
    after=st.dictionaries(st.sampled_from(_GENERATED_KEYS), st.text(max_size=30)),
    foreign_data=st.dictionaries(
        _KEY.filter(lambda k: k not in [*_GENERATED_KEYS, "overrides.yaml"]),
        st.text(max_size=30),
        max_size=4,
    ),
    overrides=st.one_of(st.none(), st.text(max_size=60)),
    foreign_labels=st.dictionaries(
        _KEY.filter(lambda k: k not in LABELS), st.text(max_size=10), max_size=3
    ),
    foreign_annotations=st.dictionaries(
        _KEY.filter(lambda k: k not in _OURS), st.text(max_size=30), max_size=3
    ),
    edits=st.dictionaries(
        st.sampled_from(_GENERATED_KEYS), st.one_of(st.none(), st.text(max_size=10))
    ),
)
def test_foreign_content_survives_and_drift_is_exactly_the_edited_keys(
    before, after, foreign_data, overrides, foreign_labels, foreign_annotations, edits
):
    existing = merge_configmap(before, OUT, None, T0).configmap
    existing["metadata"]["labels"].update(foreign_labels)
    existing["metadata"]["annotations"].update(foreign_annotations)
    existing["data"].update(foreign_data)
    if overrides is not None:
        existing["data"]["overrides.yaml"] = overrides
    for key, text in edits.items():  # someone edits (text) or deletes (None) a key
        if text is None:
            existing["data"].pop(key, None)
        else:
            existing["data"][key] = text
    snapshot = json.loads(json.dumps(existing))

    result = merge_configmap(after, OUT, existing, T1)
    cm = result.configmap

    assert existing == snapshot  # the input is never modified
    for key, text in foreign_data.items():
        assert cm["data"][key] == text
    if overrides is not None:
        assert cm["data"]["overrides.yaml"] == overrides
    for key, text in after.items():
        assert cm["data"][key] == text
    assert {k: v for k, v in cm["metadata"]["labels"].items() if k not in LABELS} == (
        foreign_labels
    )
    assert {k: v for k, v in cm["metadata"]["annotations"].items() if k not in _OURS} == (
        foreign_annotations
    )
    # Drift: a key we still generate, that we wrote, and that no longer holds what we wrote.
    expected_drift = {k for k in after if k in before and snapshot["data"].get(k) != before[k]}
    assert set(result.drifted) == expected_drift
    # A key we no longer generate goes only if nobody touched it.
    for key in set(before) - set(after):
        if snapshot["data"].get(key) == before[key]:
            assert key not in cm["data"] and key in result.removed
        else:
            assert cm["data"].get(key) == snapshot["data"].get(key)
    again = merge_configmap(after, OUT, cm, "2026-03-01T00:00:00Z")
    assert not again.changed and again.configmap == cm


def test_binary_data_counts_towards_the_limit_as_the_api_server_counts_it():
    # Kubernetes counts binaryData (decoded) with data against the 1 MiB; a
    # merge that ignored it produced objects the API server then refused.
    import base64

    existing = existing_with_foreign_content()
    blob = b"\x00" * (MAX_DATA_BYTES - 200)
    existing["binaryData"] = {"blob.bin": base64.b64encode(blob).decode()}
    with pytest.raises(DocumentTooLargeError) as info:
        merge_configmap({"toolsets.yaml": "a: 1\n" * 100, "toolset.json": "{}"}, OUT, existing, T1)
    assert info.value.size > MAX_DATA_BYTES
    existing["binaryData"] = {"small.bin": base64.b64encode(b"\x00" * 10).decode()}
    merge_configmap({"toolsets.yaml": "a: 1\n", "toolset.json": "{}"}, OUT, existing, T1)
