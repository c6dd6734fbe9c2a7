"""The plugin authors' fixture helpers: ``discover_fixture``, ``check_entry_point``, ``make_engine``.

Each assertion helper must pass on a correct plugin and fail, saying why, on
a wrong one: a helper that cannot fail would let every plugin test pass.
"""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

import pytest
from dyntoolset_loki import LokiDetector
from dyntoolset_tempo import TempoDetector

from dyntoolset.testing import check_entry_point, discover_fixture, make_engine, make_plugin_set

PLUGINS = make_plugin_set()
ENGINE = make_engine(PLUGINS)


def _prometheus(expect: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "prom",
            "namespace": "monitoring",
            "labels": {"app.kubernetes.io/name": "prometheus"},
        },
        "spec": {"clusterIP": "10.0.0.9", "ports": [{"name": "http", "port": 9090}]},
        "expect": expect,
    }


ENDPOINT = "http://prom.monitoring.svc.cluster.local:9090"


def test_discover_fixture_returns_what_matches_the_expect_block() -> None:
    found = discover_fixture(
        ENGINE, _prometheus({"detector": "prometheus", "endpoint": ENDPOINT, "port": 9090})
    )
    assert found is not None and found.detector == "prometheus"


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        (
            {"detector": "grafana", "endpoint": ENDPOINT, "port": 9090},
            "detector: expected .grafana., found .prometheus.",
        ),
        (
            {"endpoint": "http://elsewhere:9090", "port": 9090},
            "endpoint: expected .http://elsewhere:9090.",
        ),
        ({"endpoint": ENDPOINT, "port": 80}, "port: expected 80, found 9090"),
        ({"none": "not a backend"}, "near miss (not a backend) was matched"),
    ],
)
def test_discover_fixture_fails_on_a_wrong_expectation(
    expect: dict[str, Any], message: str
) -> None:
    with pytest.raises(
        AssertionError, match=re.escape(message) if "near miss" in message else message
    ):
        discover_fixture(ENGINE, _prometheus(expect))


def test_discover_fixture_near_miss_and_unexpected_miss() -> None:
    document = _prometheus({"none": "no labels"})
    document["metadata"]["labels"] = {}
    assert discover_fixture(ENGINE, document) is None
    document["expect"] = {"endpoint": ENDPOINT, "port": 9090}
    with pytest.raises(AssertionError, match="expected one Service found"):
        discover_fixture(ENGINE, document)


def test_check_entry_point_accepts_the_installed_plugin() -> None:
    check_entry_point("dyntoolset-loki", LokiDetector)


def test_check_entry_point_refuses_another_distributions_detector() -> None:
    with pytest.raises(AssertionError, match=r"expected \[\('tempo', 'dyntoolset_tempo'\)\]"):
        check_entry_point("dyntoolset-loki", TempoDetector)


def test_check_entry_point_names_a_missing_distribution() -> None:
    with pytest.raises(importlib.metadata.PackageNotFoundError, match="dyntoolset-nonexistent"):
        check_entry_point("dyntoolset-nonexistent", LokiDetector)


def test_make_engine_applies_the_configuration() -> None:
    engine = make_engine(PLUGINS, "detectors:\n  prometheus:\n    enabled: false\n")
    assert "prometheus" not in {d.name for d in engine.detectors}
    assert engine.discover([]).discovered == []
