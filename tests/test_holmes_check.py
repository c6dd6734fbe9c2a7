"""scripts/holmes_check.py (``nox -s holmes``) reports every difference it is there to catch."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "holmes_check.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("holmes_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(**overrides: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "invalid": {},
        "missing": [],
        "config_errors": {},
        "loaded": {
            "grafana/loki": {"enabled": True, "status": "enabled", "error": None},
            "jaeger/tracing/q": {"enabled": True, "status": "enabled", "error": None},
        },
        "urls": {"grafana/loki": ["http://a:1", "http://b:2"], "jaeger/tracing/q": ["http://q:80"]},
    }
    report.update(overrides)
    return report


EXPECTED = {"grafana/loki": ["http://b:2", "http://a:1"], "jaeger/tracing/q": ["http://q:80"]}


def test_a_matching_report_has_no_problem() -> None:
    assert _script().holmes_problems(_report(), EXPECTED) == []


def test_every_difference_is_reported() -> None:
    report = _report(
        invalid={"kafka/admin": "bad config"},
        missing=["rabbitmq/core"],
        config_errors={"grafana/loki": ["x: nope"]},
        urls={"grafana/loki": ["http://a:1"], "jaeger/tracing/q": ["http://q:80"]},
    )
    report["loaded"]["extra/one"] = {"enabled": False, "status": "failed", "error": "boom"}
    assert _script().holmes_problems(report, EXPECTED) == [
        "invalid toolset kafka/admin: bad config",
        "toolset rabbitmq/core not loaded at all",
        "config error in grafana/loki: ['x: nope']",
        "toolset extra/one is not enabled (failed: boom)",
        "unexpected toolset extra/one (add it to holmes-expected.yaml if it is right)",
        "grafana/loki: HolmesGPT holds URLs ['http://a:1'], expected ['http://a:1', 'http://b:2']",
    ]


def test_an_expected_toolset_that_is_missing_is_reported() -> None:
    expected = {**EXPECTED, "kafka/admin": ["kafka:9092"]}
    assert _script().holmes_problems(_report(), expected) == [
        "expected toolset kafka/admin is missing"
    ]


def test_every_plugin_package_is_known_by_its_distribution_name() -> None:
    names = _script().plugin_distributions()
    assert "dyntoolset-loki" in names
    assert len(names) == len(list(SCRIPT.parent.parent.glob("plugins/*/pyproject.toml")))
