"""``dyntoolset explain``, end to end on the bundled example cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dyntoolset.cli import main

ROOT = Path(__file__).parent.parent
EXAMPLE = str(ROOT / "examples" / "cluster")
EXAMPLE_CONFIG = str(ROOT / "examples" / "detector-config.yaml")
BUILTINS = ["prometheus", "grafana", "jaeger", "elasticsearch", "custom"]


@pytest.fixture(autouse=True)
def builtins_only(monkeypatch):
    """Third-party plugins installed in the environment must not change these results."""
    monkeypatch.setenv("DYNTOOLSET_LOAD_PLUGINS", "")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def explain_json(capsys, *argv: str) -> list[dict]:
    code, out, err = run(capsys, "explain", "--json", *argv)
    assert code == 0, err
    return json.loads(out)["verdicts"]


def test_a_service_taken_by_prometheus_shows_its_endpoint_and_who_was_not_consulted(capsys):
    code, out, err = run(
        capsys, "explain", "-f", EXAMPLE, "monitoring/kube-prometheus-stack-prometheus"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert (
        lines[0] == "Service monitoring/kube-prometheus-stack-prometheus: discovered by prometheus"
    )
    assert lines[1] == "  prometheus (priority 1): match"
    assert (
        "      endpoint:    http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"
        in lines
    )
    assert "      port:        9090 (http-web)" in lines
    assert "      health path: /-/healthy (http check)" in lines
    assert "      toolsets:    prometheus/metrics" in lines
    assert "  grafana (priority 2): not consulted: prometheus (priority 1) matched first" in lines
    rows = explain_json(capsys, "-f", EXAMPLE, "monitoring/kube-prometheus-stack-prometheus")
    assert [(r["detector"], r["verdict"]) for r in rows] == [
        ("prometheus", "match"),
        *((name, "not_consulted") for name in BUILTINS[1:]),
    ]
    assert rows[0]["port"] == {"port": 9090, "name": "http-web"}
    assert rows[0]["toolsets"] == ["prometheus/metrics"]


def test_an_invalid_service_gives_the_reason(capsys):
    code, out, _ = run(capsys, "explain", "-f", EXAMPLE, "shop/reports")
    assert code == 0
    assert out.splitlines()[0] == "Service shop/reports: not discovered"
    assert (
        "  custom (priority 5): invalid: annotation kubernaut.io/toolset-endpoint must name the "
        "Service's DNS name, not an IP address" in out.splitlines()
    )
    rows = explain_json(capsys, "-f", EXAMPLE, "shop/reports")
    assert [r["verdict"] for r in rows] == ["no_match"] * 4 + ["invalid"]


def test_a_near_miss_is_no_match_from_every_detector(capsys):
    # storefront exposes 9090, Prometheus's port, under the name "admin".
    rows = explain_json(capsys, "-f", EXAMPLE, "shop/storefront")
    assert [(r["detector"], r["verdict"]) for r in rows] == [(n, "no_match") for n in BUILTINS]
    code, out, _ = run(capsys, "explain", "-f", EXAMPLE, "shop/storefront")
    assert code == 0
    assert out.splitlines()[0] == "Service shop/storefront: not discovered"
    assert "  prometheus (priority 1): no match" in out.splitlines()


def test_a_namespace_filtered_service_with_the_example_configuration(capsys):
    code, out, _ = run(
        capsys, "explain", "-f", EXAMPLE, "-c", EXAMPLE_CONFIG, "kube-system/kube-dns"
    )
    assert code == 0
    lines = out.splitlines()
    assert (
        "  prometheus (priority 1): namespace filtered: namespace 'kube-system' is not allowed "
        "by namespaces ['!kube-*']" in lines
    )
    # Disabled detectors (jaeger, elasticsearch) get no verdict.
    assert [line.split(" (")[0].strip() for line in lines[1:]] == [
        "prometheus",
        "grafana",
        "custom",
    ]


def test_a_filter_that_hides_a_match_says_so(capsys, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "detectors:\n"
        "  prometheus: {namespaces: ['!monitoring']}\n"
        "  grafana: {required_annotations: ['example.com/grafana=yes']}\n"
    )
    argv = ["-f", EXAMPLE, "-c", str(config), "monitoring/kube-prometheus-stack-prometheus"]
    code, out, _ = run(capsys, "explain", *argv)
    assert code == 0
    assert out.splitlines()[0].endswith(": not discovered")
    assert (
        "  prometheus (priority 1): namespace filtered: namespace 'monitoring' is not allowed by "
        "namespaces ['!monitoring'] (without this filter prometheus would match)" in out
    )
    rows = explain_json(capsys, *argv)
    assert rows[0]["would_match"] is True
    assert rows[1] == {
        "detector": "grafana",
        "priority": 2,
        "verdict": "annotation_filtered",
        "detail": "required annotation clause 'example.com/grafana=yes' of required_annotations "
        "['example.com/grafana=yes'] is not met",
        "would_match": False,
    }


def test_a_service_not_in_the_manifests_exits_1_naming_what_was_read(capsys):
    code, out, err = run(capsys, "explain", "-f", EXAMPLE, "shop/nothing-here")
    assert code == 1 and out == ""
    assert (
        err == f"dyntoolset: Service shop/nothing-here not found in {EXAMPLE} (58 Services read)\n"
    )


def test_bad_manifests_are_reported_as_discover_reports_them(capsys, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Service\nmetadata: {name: [x]\n")
    code, out, err = run(capsys, "explain", "-f", EXAMPLE, "-f", str(broken), "shop/storefront")
    assert code == 1  # the Service is explained, but some input could not be read
    assert out.startswith("Service shop/storefront: not discovered\n")
    assert f"error: {broken}" in err
    code, out, err = run(capsys, "explain", "-f", str(broken), "shop/storefront")
    assert code == 1 and out == ""
    assert f"error: {broken}" in err and "Service shop/storefront not found" in err


def test_a_bad_configuration_exits_2(capsys, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("detectors: {prometheus: {priority: high}}\n")
    code, out, err = run(capsys, "explain", "-f", EXAMPLE, "-c", str(config), "a/b")
    assert code == 2 and out == ""
    assert str(config) in err and "priority" in err


@pytest.mark.parametrize("key", ["storefront", "/storefront", "shop/", "shop/a/b"])
def test_a_malformed_service_name_is_a_usage_error(capsys, key):
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "-f", EXAMPLE, key])
    assert exit_info.value.code == 2
    assert "expected NAMESPACE/NAME" in capsys.readouterr().err
