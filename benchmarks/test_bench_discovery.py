"""Per-Service costs. Read ratios within one run; absolute numbers vary by machine.

Run with ``nox -s bench``.
"""

from __future__ import annotations

import json

import pytest

from dyntoolset.pipeline import Engine
from dyntoolset.snapshot import service_from_object
from dyntoolset.testing import make_plugin_set


@pytest.fixture(scope="module")
def engine():
    return Engine.load(None, make_plugin_set())


@pytest.fixture(scope="module")
def filtered_engine(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_text(
        "detectors:\n"
        + "".join(
            f"  {name}:\n    namespaces: ['team-*', '!team-1*']\n"
            f"    required_annotations: ['a.io/x | b.io/y']\n"
            for name in ("prometheus", "grafana", "jaeger", "elasticsearch")
        )
    )
    return Engine.load(path, make_plugin_set())


@pytest.fixture(scope="module")
def services_10k(objects_10k):
    return [service_from_object(o) for o in objects_10k]


def test_discover_10k_services(benchmark, engine, services_10k):
    """All five built-in detectors over 10,000 Services."""
    result = benchmark(engine.discover, services_10k)
    assert result.services_seen == 10_000 and result.discovered


def test_discover_10k_services_with_filters(benchmark, filtered_engine, services_10k):
    """The same with namespace patterns and annotation rules on four detectors."""
    result = benchmark(filtered_engine.discover, services_10k)
    assert result.services_seen == 10_000


def test_snapshot_from_raw_json_10k(benchmark, objects_10k):
    """Our slim snapshot straight from JSON text (the path the watch takes)."""
    lines = [json.dumps(o) for o in objects_10k]
    result = benchmark(lambda: [service_from_object(json.loads(line)) for line in lines])
    assert len(result) == 10_000


def test_kubernetes_client_model_deserialisation_10k(benchmark, objects_10k):
    """The client's own model deserialisation, for comparison with the snapshot."""
    from kubernetes.client import ApiClient

    client = ApiClient()

    payload = json.dumps(
        {"kind": "ServiceList", "apiVersion": "v1", "metadata": {}, "items": objects_10k}
    )
    result = benchmark.pedantic(
        lambda: client.deserialize(payload, "V1ServiceList", "application/json"),
        rounds=2,
        iterations=1,
    )
    assert len(result.items) == 10_000


def test_render_all_formats(benchmark, engine, services_10k):
    """HolmesGPT and Kubernaut documents for everything found in 10,000 Services."""
    discovered = engine.discover(services_10k).discovered
    documents = benchmark(
        lambda: {r.data_key: r.render(discovered) for r in engine.renderers.values()}
    )
    assert set(documents) == {"custom_toolset.yaml", "toolset.json"}


@pytest.fixture(scope="module")
def holmes_document(engine, services_10k):
    from dyntoolset.render import holmesgpt

    return holmesgpt.build_document(engine.discover(services_10k).discovered)


_DUMP_OPTIONS = {
    "sort_keys": False,
    "allow_unicode": False,
    "default_flow_style": False,
    "width": 100,
}


def test_holmesgpt_dump_pure_python(benchmark, holmes_document):
    """The HolmesGPT document serialised as the renderer does (pure-Python SafeDumper)."""
    import yaml

    text = benchmark(yaml.dump, holmes_document, Dumper=yaml.SafeDumper, **_DUMP_OPTIONS)
    assert text.startswith("toolsets:")


def test_holmesgpt_dump_libyaml(benchmark, holmes_document):
    """The same with libyaml's CSafeDumper, for comparison: about 7x faster, but not
    used. Its output differs from the pure dumper's for some strings (folding of
    long double-quoted scalars, empty keys, lone surrogates raise), so the bytes
    would depend on whether PyYAML was built with libyaml. See
    ``render/holmesgpt.py:_dump``."""
    import yaml

    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML without libyaml")
    text = benchmark(yaml.dump, holmes_document, Dumper=yaml.CSafeDumper, **_DUMP_OPTIONS)
    assert text == yaml.dump(holmes_document, Dumper=yaml.SafeDumper, **_DUMP_OPTIONS)
