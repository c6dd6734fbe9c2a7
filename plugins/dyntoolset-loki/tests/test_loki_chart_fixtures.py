"""dyntoolset-loki against the Services the charts and the Loki Operator render.

``fixtures/*.yaml`` hold them, each with an ``expect:`` block: what the
detector returns by default (or ``none:``, a near miss no detector may take,
the built-ins included), and under ``gateway:`` what it returns with
``prefer: gateway``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dyntoolset_loki import LokiDetector

from dyntoolset import Engine, load_config_text, service_from_object
from dyntoolset.testing import (
    check_detector,
    discover_fixture,
    fixture_documents,
    make_engine,
    make_plugin_set,
)

FIXTURES = Path(__file__).parent / "fixtures"


CASES = fixture_documents(FIXTURES)
IDS = [case_id for case_id, _ in CASES]
DOCS = [doc for _, doc in CASES]
PLUGINS = make_plugin_set(LokiDetector)
DIRECT = make_engine(PLUGINS)
GATEWAY = Engine(
    load_config_text("detectors:\n  loki:\n    config:\n      prefer: gateway\n", "<t>", PLUGINS),
    PLUGINS,
)


def _check(found: Any, expect: dict[str, Any]) -> None:
    assert found.detector == "loki"
    assert found.endpoint == expect["endpoint"]
    assert found.port is not None and found.port.port == expect["port"]
    assert found.health_path == expect["health"]
    assert found.metadata == {"component": expect["component"]}
    (spec,) = found.toolsets
    assert spec.kind == "grafana/loki"
    assert spec.config == {"api_url": expect["endpoint"]}


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_rendered_services_by_default(doc: dict[str, Any]) -> None:
    found = discover_fixture(DIRECT, doc)
    if found is None:
        return
    expect = doc["expect"]
    _check(found, expect)


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_rendered_services_with_prefer_gateway(doc: dict[str, Any]) -> None:
    result = GATEWAY.discover([service_from_object(doc)])
    expect = doc["expect"].get("gateway")
    if expect is None:
        assert result.discovered == []
        return
    (found,) = result.discovered
    _check(found, expect)


def test_fixtures_cover_every_source_and_mode() -> None:
    found = {
        (case_id.split(":")[0], doc["expect"]["component"])
        for case_id, doc in CASES
        if "detector" in doc["expect"]
    }
    assert found == {
        ("grafana-loki", "read"),  # SimpleScalable
        ("grafana-loki", "query-frontend"),  # Distributed
        ("grafana-loki", "single-binary"),  # fullnameOverride: logs
        ("loki-distributed", "query-frontend"),
        ("loki-operator", "query-frontend"),  # LokiStack
    }
    assert sum(1 for doc in DOCS if "gateway" in doc["expect"]) == 2
    assert sum(1 for doc in DOCS if "none" in doc["expect"]) >= 30


def test_the_rendered_services_honour_the_detector_contract() -> None:
    check_detector(LokiDetector, [service_from_object(doc) for doc in DOCS])
