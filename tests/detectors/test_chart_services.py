"""Every detector against realistic chart Services (tests/detectors/fixtures/*.yaml).

Each fixture document says which detector must match it and what it must
return, or that no detector may match it (a near miss). All five detectors
run on every document, so a Service claimed by the wrong detector fails too.
"""

from __future__ import annotations

from typing import Any

import pytest

from dyntoolset.errors import InvalidService
from dyntoolset.model import Discovered
from dyntoolset.snapshot import service_from_object

from ._support import DETECTORS, ctx_for, fixture_documents

CASES = list(fixture_documents())


def _run_all(doc: dict[str, Any]) -> dict[str, Discovered | InvalidService]:
    svc = service_from_object(doc)
    results: dict[str, Discovered | InvalidService] = {}
    for detector in DETECTORS:
        try:
            found = detector.detect(svc, ctx_for(detector))
        except InvalidService as exc:
            results[detector.name] = exc
            continue
        if found is not None:
            results[detector.name] = found
    return results


@pytest.mark.parametrize("doc", [doc for _, doc in CASES], ids=[case_id for case_id, _ in CASES])
def test_chart_service(doc: dict[str, Any]) -> None:
    expect = doc["expect"]
    results = _run_all(doc)
    if "none" in expect:
        assert results == {}, f"near miss ({expect['none']}) was matched"
        return
    detector = expect["detector"]
    if "invalid" in expect:
        assert list(results) == [detector]
        error = results[detector]
        assert isinstance(error, InvalidService)
        assert expect["invalid"] in error.reason
        return
    assert sorted(results) == sorted([detector, *expect.get("also", [])])
    found = results[detector]
    assert isinstance(found, Discovered)
    assert found.detector == detector
    assert found.type == expect.get("type", detector)
    assert found.endpoint == expect["endpoint"]
    assert found.port is not None
    assert found.port.port == expect["port"]
    assert found.health_path == expect["health"]
    assert found.key == f"{doc['metadata']['namespace']}/{doc['metadata']['name']}"
    if "metadata" in expect:
        assert dict(found.metadata) == expect["metadata"]


def test_fixtures_cover_every_detector_and_near_misses() -> None:
    # Guards the fixture set itself: positives for all five, and plenty of near misses.
    expected = [doc["expect"] for _, doc in CASES]
    matched = {e["detector"] for e in expected if "detector" in e and "invalid" not in e}
    assert matched == {d.name for d in DETECTORS}
    assert sum(1 for e in expected if "none" in e) >= 40
    assert len({case_id for case_id, _ in CASES}) == len(CASES)
