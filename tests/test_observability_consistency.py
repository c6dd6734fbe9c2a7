"""The dashboard, the alert rules, the exported metrics and their docs agree.

Every metric a dashboard query or an alert expression selects is exported
(PromQL parsed by ``tests/promql_names.py``, not matched by a pattern), and
every exported family is a row of the table in ``docs/observability.md``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dyntoolset.dashboard import dashboard
from dyntoolset.metrics import METRIC_NAMES, Metrics
from tests.promql_names import metric_names, tokens

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "examples" / "observability" / "dyntoolset-alerts.yaml"
DOCS = ROOT / "docs" / "observability.md"


def exported_series() -> set[str]:
    """Every series name /metrics can hold (histograms with their three suffixes)."""
    names = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


def dashboard_expressions() -> list[tuple[str, str]]:
    """``(where, expr)`` for every panel query and every variable's query."""
    found = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            # Grafana's label_values(METRIC, LABEL) is no PromQL: its metric is the selector.
            match = re.fullmatch(r"label_values\((\w+), *\w+\)", variable["query"])
            assert match, variable["query"]
            found.append((f"variable {variable['name']}", match.group(1)))
    return found


def alert_expressions() -> list[tuple[str, str]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return [(f"alert {rule['alert']}", rule["expr"]) for group in groups for rule in group["rules"]]


def documented_families() -> set[str]:
    """The first column of the metrics table."""
    return set(re.findall(r"^\| `(dynamic_toolset_[a-z_]+)` \|", DOCS.read_text(), re.MULTILINE))


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (detector, reason) (rate(a_total{job=~"$job",reason="x"}[$__rate_interval]))',
            {"a_total"},
        ),
        ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
        (
            "(sum without (result) (increase(c_total[10m])) or on (job, instance) (g * 0)) == 0"
            " and on (job, instance) g == 1",
            {"c_total", "g"},
        ),
        ('time() - max(ts{job=~"$job"})', {"ts"}),
        ("x / ignoring (code) group_left (route) y offset 5m > bool 0", {"x", "y"}),
        ('count(count by (distribution) (info{name="not_a_metric"}))', {"info"}),
        ("sum(rate(by_name_total[1m])) unless nan", {"by_name_total"}),
    ],
)
def test_the_tokenizer_finds_exactly_the_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_the_tokenizer_keeps_strings_whole() -> None:
    assert ("string", '"a \\" b"') in tokens('x{l="a \\" b"}')


def test_every_metric_the_dashboard_and_the_alerts_use_is_exported() -> None:
    available = exported_series()
    missing = [
        f"{where}: {name}"
        for where, expr in [*dashboard_expressions(), *alert_expressions()]
        for name in sorted(metric_names(expr))
        if name not in available
    ]
    assert missing == []


def test_every_expression_selects_a_metric() -> None:
    empty = [
        where
        for where, expr in [*dashboard_expressions(), *alert_expressions()]
        if not metric_names(expr)
    ]
    assert empty == []


def test_every_exported_family_is_a_row_of_the_docs_table() -> None:
    documented = documented_families()
    assert set(METRIC_NAMES) - documented == set()
    assert documented - set(METRIC_NAMES) == set()


#: The V1 names of the requirements (BR-TOOLSET-041's predecessor list).
V1_NAMES = {
    "dynamic_toolset_services_discovered_total",
    "dynamic_toolset_discovery_duration_seconds",
    "dynamic_toolset_discovery_errors_total",
    "dynamic_toolset_health_check_failures_total",
    "dynamic_toolset_configmap_updates_total",
    "dynamic_toolset_configmap_reconcile_duration_seconds",
    "dynamic_toolset_configmap_drift_detected_total",
    "dynamic_toolset_generations_total",
    "dynamic_toolset_tools_count",
}


def test_the_v1_decision_table_is_true() -> None:
    text = DOCS.read_text()
    section = text[text.index("### What became of each V1 name") : text.index("## Cardinality")]
    rows = re.findall(r"^\| `(dynamic_toolset_[a-z_]+)` \| ([^|]+) \|", section, re.MULTILINE)
    decisions = {name: decision.strip() for name, decision in rows}
    assert set(decisions) == V1_NAMES
    # Nothing dropped: every V1 name is still exported.
    assert set(METRIC_NAMES) >= V1_NAMES
    metrics_table = dict(
        re.findall(
            r"^\| `(dynamic_toolset_[a-z_]+)` \|(?:[^|]*\|){3} ([^|]+) \|$", text, re.MULTILINE
        )
    )
    for name, decision in decisions.items():
        alias = re.match(r"alias of `(dynamic_toolset_[a-z_]+)`", decision)
        if alias:
            assert alias.group(1) in METRIC_NAMES, name
            assert metrics_table[name].strip() == "V1 alias", name
        else:
            assert decision == "kept", name
            assert metrics_table[name].strip() == "V1", name
