"""The alert rules: valid for promtool, unit-tested, consistent with the metrics and the docs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "observability"
RULES = EXAMPLES / "dyntoolset-alerts.yaml"
RULE_TESTS = EXAMPLES / "dyntoolset-alerts.test.yaml"
PROMETHEUS_RULE = EXAMPLES / "dyntoolset-prometheusrule.yaml"
DOCS = ROOT / "docs" / "observability.md"


def promtool() -> str:
    # The tests that call this are marked `integration`: a plain pytest skips
    # them without Debian's prometheus, --require-integration fails them here.
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("no promtool found (scripts/test-deps.sh installs Debian's prometheus)")
    return found


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.mark.integration
def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


@pytest.mark.integration
def test_every_alert_passes_its_promtool_unit_tests() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=EXAMPLES,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_unit_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in alert_rules()}


def test_the_prometheusrule_holds_the_same_groups() -> None:
    wrapped = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert wrapped["apiVersion"] == "monitoring.coreos.com/v1"
    assert wrapped["kind"] == "PrometheusRule"
    assert wrapped["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def _anchors(markdown: str) -> set[str]:
    # GitHub's rule: lower case, punctuation but '-' dropped, spaces to '-'.
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_links_to_its_runbook_section() -> None:
    anchors = _anchors(DOCS.read_text())
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page == "docs/observability.md", rule["alert"]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in {DOCS.name}"
