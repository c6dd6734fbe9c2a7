"""The JSON fast path's guarantees, pinned down for any faster way of giving them (issue 15).

A duplicate key is refused with its position however it is spelt (spacing
around the colon, escaped quotes and backslashes in keys, JSON text inside
string values), and exactly the documents with a duplicate are refused.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dyntoolset import manifests
from dyntoolset.manifests import read_manifests


def _read(tmp_path, text: str):
    path = tmp_path / "svcs.json"
    path.write_text(text, encoding="utf-8")
    report = read_manifests([str(path)])
    return [str(e).removeprefix(f"{path}:") for e in report.errors], report.objects


def _service(name: str, **annotations: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "ns", "annotations": annotations},
        "spec": {"ports": [{"port": 80}]},
    }


# A string value holding JSON with quotes escaped before colons, as the
# last-applied-configuration annotation does, next to a real duplicate.
LAST_APPLIED = json.dumps({"metadata": {"name": "a", "labels": {"app": "x"}}, "note": "a: b"})


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('{"kind": "List", "items": [], "kind": "List"}', 1),  # ": "
        ('{"kind":"List","items":[],"kind":"List"}', 1),  # compact
        ('{"kind" : "List", "items" : [], "kind" : "List"}', 1),  # " : "
        ('{"kind"  : "List",\n"items": [],\n"kind"\t: "List"}', 3),  # unusual spacing
        (
            '{"kind": "List", "items": [{"metadata": {"annotations": {"x": '
            + json.dumps(LAST_APPLIED)
            + ', "x": "again"}}}]}',
            1,
        ),
        ('{"kind": "List", "a\\\\": 1, "a\\\\": 2}', 1),  # keys ending in an escaped backslash
    ],
)
def test_a_duplicate_key_is_refused_with_its_position_however_it_is_spaced(tmp_path, text, line):
    errors, objects = _read(tmp_path, text)
    assert len(errors) == 1 and errors[0].startswith(f"line {line} column ")
    assert "found duplicate key" in errors[0]
    assert objects == []


def test_unusual_spacing_without_duplicates_is_read(tmp_path):
    text = '{"kind"\n:\t"List",\r\n"items"  :  [{"kind":"Service","metadata":{"name":"a"}}]}'
    errors, objects = _read(tmp_path, text)
    assert errors == [] and [o.obj["metadata"]["name"] for o in objects] == ["a"]


def test_nesting_at_the_limit_is_read_and_one_deeper_is_refused(tmp_path):
    def nested(levels: int) -> str:  # a List whose one item nests ``levels`` containers in all
        inner = "[" * (levels - 3) + "]" * (levels - 3)
        return '{"kind": "List", "items": [{"kind": "Service", "x": ' + inner + "}]}"

    errors, objects = _read(tmp_path, nested(manifests.MAX_YAML_DEPTH - 1))
    assert errors == [] and len(objects) == 1
    errors, _ = _read(tmp_path, nested(manifests.MAX_YAML_DEPTH + 1))
    assert errors and "nested deeper than 100 levels" in errors[0]


_keys = st.sampled_from(["a", "b", 'q"', "c\\", "d:", 'e\\":'])
_json = st.recursive(
    st.none() | st.integers() | st.text(alphabet='ab":\\ \n', max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.lists(st.tuples(_keys, children), max_size=3)
    ),
    max_leaves=12,
)


def _dump(value, indent) -> str:
    """JSON text of ``value``, where a list of pairs is an object that may repeat keys."""
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        body = ", ".join(f"{json.dumps(k)}: {_dump(v, indent)}" for k, v in value)
        return "{" + body + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v, indent) for v in value) + "]"
    return json.dumps(value)


def _has_duplicate(value) -> bool:
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        keys = [k for k, _ in value]
        return len(set(keys)) != len(keys) or any(_has_duplicate(v) for _, v in value)
    if isinstance(value, list):
        return any(_has_duplicate(v) for v in value)
    return False


@given(document=st.lists(st.tuples(_keys, _json), min_size=1, max_size=4))
def test_the_fast_path_refuses_exactly_the_documents_with_a_duplicate_key(document):
    text = _dump(document, None)
    parsed = manifests._fast_json(text)
    assert (parsed is manifests._NOT_JSON) == _has_duplicate(document), text
