"""The command line, end to end on the bundled example cluster."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dyntoolset.cli import main
from dyntoolset.configmap import GENERATED_AT
from dyntoolset.plugin import PLUGIN_API_VERSION

ROOT = Path(__file__).parent.parent
EXAMPLE = str(ROOT / "examples" / "cluster")
SEED = ROOT / "tests" / "fixtures" / "seed"


@pytest.fixture(autouse=True)
def builtins_only(monkeypatch):
    """Third-party plugins installed in the environment must not change these results."""
    monkeypatch.setenv("DYNTOOLSET_LOAD_PLUGINS", "")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_discover_prints_a_configmap_ready_for_kubectl_apply(capsys):
    code, out, err = run(capsys, "discover", "-f", EXAMPLE)
    assert code == 0
    configmap = yaml.safe_load(out)
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["name"] == "kubernaut-toolset-config"
    assert "resourceVersion" not in configmap["metadata"]
    assert set(configmap["data"]) == {"custom_toolset.yaml", "toolset.json"}
    toolsets = yaml.safe_load(configmap["data"]["custom_toolset.yaml"])["toolsets"]
    assert {i["prometheus_url"] for i in toolsets["prometheus/metrics"]["config"]["instances"]} == {
        "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090",
        "http://thanos-query.thanos.svc.cluster.local:9090",
    }
    tools = json.loads(configmap["data"]["toolset.json"])["tools"]
    assert {t["type"] for t in tools} >= {"prometheus", "grafana", "jaeger", "elasticsearch"}
    assert "read 58 Services (3 other objects ignored)" in err
    assert "invalid (custom)" in err


def test_discover_is_deterministic_apart_from_the_timestamp(capsys):
    _, first, _ = run(capsys, "discover", "-f", EXAMPLE)
    _, second, _ = run(capsys, "discover", "-f", EXAMPLE)
    strip = lambda text: [line for line in text.splitlines() if GENERATED_AT not in line]  # noqa: E731
    assert strip(first) == strip(second)


@pytest.mark.parametrize(
    ("fmt", "data_key"), [("holmesgpt", "custom_toolset.yaml"), ("kubernaut", "toolset.json")]
)
def test_discover_single_format_is_exactly_that_key_of_the_configmap(capsys, fmt, data_key):
    code, out, _ = run(capsys, "discover", "-f", EXAMPLE, "-o", fmt)
    assert code == 0
    _, whole, _ = run(capsys, "discover", "-f", EXAMPLE)
    assert out == yaml.safe_load(whole)["data"][data_key]


def test_discover_single_format_holds_every_example_backend(capsys):
    _, holmes, _ = run(capsys, "discover", "-f", EXAMPLE, "-o", "holmesgpt")
    assert set(yaml.safe_load(holmes)["toolsets"]) == {
        "prometheus/metrics",
        "grafana/dashboards",
        "grafana/loki",
        "elasticsearch/cluster",
        "elasticsearch/data",
        "billing-api/shop/billing-api",
        "jaeger/tracing/jaeger-query",
    }
    _, kubernaut, _ = run(capsys, "discover", "-f", EXAMPLE, "-o", "kubernaut")
    assert sorted(t["name"] for t in json.loads(kubernaut)["tools"]) == [
        "billing-api.shop",
        "jaeger-query.tracing",
        "kube-prometheus-stack-grafana.monitoring",
        "kube-prometheus-stack-prometheus.monitoring",
        "logs-es-http.elastic",
        "loki-gateway.logging",
        "thanos-query.thanos",
    ]


def test_discover_unknown_output_is_a_usage_error(capsys):
    code, out, err = run(capsys, "discover", "-f", EXAMPLE, "-o", "xml")
    assert code == 2 and out == ""
    assert "unknown output 'xml'; choose one of: configmap, holmesgpt, kubernaut" in err


def test_discover_with_config_disabling_detectors(capsys):
    code, out, err = run(
        capsys, "discover", "-f", EXAMPLE, "-c", str(SEED / "ac-037-01.yaml"), "-o", "kubernaut"
    )
    assert code == 0
    types = {t["type"] for t in json.loads(out)["tools"]}
    assert "jaeger" not in types and "elasticsearch" not in types and "prometheus" in types
    assert "detectors: prometheus (priority 1), grafana (priority 2), custom (priority 5)" in err


def test_discover_with_invalid_config_exits_2_listing_problems(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("detectors: {prometheus: {enabled: 'no'}}\n")
    code, out, err = run(capsys, "discover", "-f", EXAMPLE, "-c", str(bad))
    assert code == 2 and out == ""
    assert "$.detectors.prometheus.enabled: expected bool (true or false), got 'no'" in err


def test_discover_merges_into_an_existing_configmap_and_reports_drift(capsys, tmp_path):
    _, out, _ = run(capsys, "discover", "-f", EXAMPLE)
    existing = yaml.safe_load(out)
    existing["data"]["overrides.yaml"] = "toolsets: {}\n"
    existing["data"]["toolset.json"] = "{}"  # someone edited a generated key
    path = tmp_path / "cm.yaml"
    path.write_text(yaml.safe_dump(existing))
    code, out, err = run(capsys, "discover", "-f", EXAMPLE, "--existing", str(path))
    merged = yaml.safe_load(out)
    assert code == 0
    assert merged["data"]["overrides.yaml"] == "toolsets: {}\n"
    assert json.loads(merged["data"]["toolset.json"])["tools"]
    assert "drift: restored generated keys edited or deleted by someone else: toolset.json" in err


def test_existing_must_hold_one_configmap(capsys, tmp_path):
    path = tmp_path / "none.yaml"
    path.write_text("kind: Service\nmetadata: {name: x}\n")
    code, _, err = run(capsys, "discover", "-f", EXAMPLE, "--existing", str(path))
    assert code == 1 and "expected exactly one ConfigMap, found 0" in err


def test_malformed_manifests_are_reported_and_exit_1(capsys, tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "kind: Service\nmetadata: {name: ok, namespace: a}\n---\n[unclosed\n"
    )
    (tmp_path / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: p}\nspec: {ports: [{port: nope}]}\n"
    )
    code, out, err = run(capsys, "discover", "-f", str(tmp_path))
    assert code == 1
    # A ConfigMap missing what could not be read would remove toolsets when applied.
    assert out == ""
    assert f"{tmp_path / 'bad.yaml'}:line 5 column 1: invalid YAML" in err
    assert (
        f"{tmp_path / 'svc.yaml'}:document 1: invalid Service: spec.ports[0].port must be an integer"
        in err
    )


def test_config_validate(capsys, tmp_path):
    for name in ("ac-037-01.yaml", "ac-038-01.yaml", "ac-040-03.yaml"):
        code, out, _ = run(capsys, "config", "validate", str(SEED / name))
        assert code == 0 and "valid; detectors in order" in out
    code, _, err = run(capsys, "config", "validate", str(SEED / "ac-040-03.yaml"))
    assert "warning: plugin 'custom-plugin'" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("detectors:\n  prometheus: {priority: high}\n  nope: {}\n")
    code, out, err = run(capsys, "config", "validate", str(bad))
    assert code == 2 and out == ""
    assert err.splitlines()[1:] == [
        "  $.detectors.prometheus.priority: expected int, got 'high'",
        "  $.detectors.nope: unknown detector 'nope'; installed detectors: custom, elasticsearch, grafana, jaeger, prometheus",
    ]
    code, _, err = run(capsys, "config", "validate", str(tmp_path / "absent.yaml"))
    assert code == 2 and "no such file" in err


def test_config_show_applies_defaults(capsys):
    code, out, _ = run(capsys, "config", "show", str(SEED / "ac-037-01.yaml"))
    shown = yaml.safe_load(out)
    assert code == 0
    assert shown["detectors"]["jaeger"]["enabled"] is False
    assert shown["detectors"]["prometheus"]["health_check"] == {
        "path": None,
        "timeout": 5.0,
        "retries": 2,
        "kind": None,
    }
    assert shown["output"]["formats"] == ["holmesgpt", "kubernaut"]
    _, defaults, _ = run(capsys, "config", "show")
    assert yaml.safe_load(defaults)["resync_interval"] == 300.0


def test_plugins_lists_builtins_with_provenance(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    rows = {(r["kind"], r["name"]): r for r in json.loads(out)["plugins"]}
    assert code == 0
    assert rows[("detector", "prometheus")]["distribution"].startswith("dyntoolset ")
    assert rows[("detector", "prometheus")]["priority"] == 1
    assert rows[("detector", "prometheus")]["enabled"] is True
    assert rows[("renderer", "holmesgpt")]["enabled"] is True
    assert {r["api_version"] for r in rows.values()} == {PLUGIN_API_VERSION}
    code, table, _ = run(capsys, "plugins", "-c", str(SEED / "ac-037-01.yaml"))
    header, *lines = table.splitlines()
    assert header.split()[:7] == [
        "KIND",
        "NAME",
        "VERSION",
        "API",
        "DISTRIBUTION",
        "ENABLED",
        "PRIORITY",
    ]
    jaeger = next(line for line in lines if " jaeger " in line)
    assert " no " in jaeger
    assert jaeger.split()[3] == PLUGIN_API_VERSION


def test_plugins_shows_what_each_distribution_declares(capsys, monkeypatch):
    monkeypatch.setenv("DYNTOOLSET_LOAD_PLUGINS", "dyntoolset-loki")
    _, out, _ = run(capsys, "plugins", "--json")
    rows = {(r["kind"], r["name"]): r for r in json.loads(out)["plugins"]}
    assert (
        rows[("detector", "loki")]["api_version"] == "2.3"
    )  # what dyntoolset-loki declares (the tenant rule, the prefilter)
    assert rows[("detector", "grafana")]["api_version"] == PLUGIN_API_VERSION


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run(
        [sys.executable, "-m", "dyntoolset", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("dyntoolset ")


def test_existing_file_that_cannot_be_read_is_an_input_error(capsys, tmp_path):
    code, out, err = run(
        capsys, "discover", "-f", EXAMPLE, "--existing", str(tmp_path / "absent.yaml")
    )
    assert code == 1 and out == ""
    assert f"{tmp_path / 'absent.yaml'}: no such file or directory" in err


def test_output_over_the_configmap_limit_is_refused_whole(capsys, tmp_path):
    existing = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kubernaut-toolset-config", "namespace": "kubernaut-system"},
        "data": {"huge.txt": "x" * (1024 * 1024 - 10)},
    }
    path = tmp_path / "cm.json"
    path.write_text(json.dumps(existing))
    code, out, err = run(capsys, "discover", "-f", EXAMPLE, "--existing", str(path))
    assert code == 1 and out == ""
    assert "over the 1048576-byte limit; the previous ConfigMap is kept" in err


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("data: [1, 2]", "$.data: expected a mapping of strings to strings, got [1, 2]"),
        ("data: {overrides.yaml: 5}", "$.data['overrides.yaml']: expected a string, got 5"),
        ("metadata: 5", "$.metadata: expected a mapping, got 5"),
    ],
)
def test_existing_configmap_of_the_wrong_shape_is_an_input_error(capsys, tmp_path, body, problem):
    path = tmp_path / "cm.yaml"
    path.write_text(f"apiVersion: v1\nkind: ConfigMap\n{body}\n")
    code, out, err = run(capsys, "discover", "-f", EXAMPLE, "--existing", str(path))
    assert code == 1 and out == ""
    assert err == f"dyntoolset: {path}:document 1: invalid ConfigMap: {problem}\n"


def test_summary_says_none_when_every_detector_is_disabled(capsys, tmp_path):
    config = tmp_path / "off.yaml"
    config.write_text(
        "detectors:\n"
        + "".join(
            f"  {n}: {{enabled: false}}\n"
            for n in ("prometheus", "grafana", "jaeger", "elasticsearch", "custom")
        )
    )
    code, _, err = run(capsys, "discover", "-f", EXAMPLE, "-c", str(config))
    assert code == 0
    assert "detectors: none" in err.splitlines()


def test_config_validate_names_what_is_wrong_with_the_path(capsys, tmp_path):
    code, out, err = run(capsys, "config", "validate", str(tmp_path))
    assert code == 2 and out == ""
    assert err == (
        f"dyntoolset: invalid configuration in {tmp_path} (1 problem):\n"
        f"  $: cannot read file: Is a directory\n"
    )


def test_config_validate_reads_a_pipe(tmp_path):
    # 'dyntoolset config validate <(kubectl get cm ... -o jsonpath=...)' passes a
    # pipe, which is not a regular file but is perfectly readable.
    proc = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m dyntoolset config validate <(echo 'detectors: {{}}')"],
        capture_output=True,
        text=True,
        check=False,
        env={"DYNTOOLSET_LOAD_PLUGINS": "", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert ": valid; detectors in order: prometheus, grafana" in proc.stdout


def test_single_format_with_existing_applies_its_overrides(capsys, tmp_path):
    # -o holmesgpt --existing used to ignore the existing ConfigMap silently, so
    # the printed file lacked the operator's overrides.yaml toolsets.
    _, out, _ = run(capsys, "discover", "-f", EXAMPLE)
    existing = yaml.safe_load(out)
    existing["data"]["overrides.yaml"] = (
        "toolsets:\n  billing/api:\n    type: http\n    enabled: true\n"
        "    config: {endpoints: [{hosts: [billing.example.com]}]}\n"
    )
    path = tmp_path / "cm.yaml"
    path.write_text(yaml.safe_dump(existing))
    code, out, _ = run(
        capsys, "discover", "-f", EXAMPLE, "--existing", str(path), "-o", "holmesgpt"
    )
    assert code == 0
    toolsets = yaml.safe_load(out)["toolsets"]
    assert "billing/api" in toolsets and "prometheus/metrics" in toolsets
    _, merged, _ = run(capsys, "discover", "-f", EXAMPLE, "--existing", str(path))
    assert out == yaml.safe_load(merged)["data"]["custom_toolset.yaml"]


def test_single_format_reports_overrides_that_cannot_be_applied(capsys, tmp_path):
    _, out, _ = run(capsys, "discover", "-f", EXAMPLE)
    existing = yaml.safe_load(out)
    existing["data"]["overrides.yaml"] = "toolsets: 5\n"
    path = tmp_path / "cm.yaml"
    path.write_text(yaml.safe_dump(existing))
    code, out, err = run(
        capsys, "discover", "-f", EXAMPLE, "--existing", str(path), "-o", "holmesgpt"
    )
    assert code == 0 and "prometheus/metrics" in yaml.safe_load(out)["toolsets"]
    assert "warning: overrides.yaml: $.toolsets: expected a mapping, got int" in err


def test_existing_must_be_the_output_configmap(capsys, tmp_path):
    # Passing the wrong ConfigMap (say, the detector configuration) copied all
    # its keys into the generated one as "foreign" keys, renamed.
    path = tmp_path / "cm.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: dyntoolset-config, namespace: kubernaut-system}\n"
        "data: {detector-config.yaml: 'detectors: {}'}\n"
    )
    code, out, err = run(capsys, "discover", "-f", EXAMPLE, "--existing", str(path))
    assert code == 1 and out == ""
    assert err == (
        f"dyntoolset: {path}:document 1: ConfigMap kubernaut-system/dyntoolset-config is not "
        f"the output ConfigMap kubernaut-system/kubernaut-toolset-config (output.name and "
        f"output.namespace in the configuration)\n"
    )


def test_existing_without_name_or_namespace_is_taken_as_the_output(capsys, tmp_path):
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\ndata: {notes.txt: keep}\n")
    code, out, _ = run(capsys, "discover", "-f", EXAMPLE, "--existing", str(path))
    assert code == 0 and yaml.safe_load(out)["data"]["notes.txt"] == "keep"


def test_a_reader_that_goes_away_ends_the_output_quietly():
    """``dyntoolset plugins --json | head -1``: no BrokenPipeError traceback, exit 141."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte is written
    try:
        writer = subprocess.run(
            [sys.executable, "-m", "dyntoolset", "plugins", "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert writer.stderr == ""
    assert writer.returncode == 141


# -- input that must not become an applyable ConfigMap -------------------------


def test_no_services_read_prints_nothing(capsys, tmp_path, monkeypatch):
    # `false | dyntoolset discover -f - | kubectl apply -f -` once wiped every toolset.
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = run(capsys, "discover", "-f", "-")
    assert (code, out) == (1, "")
    assert "no Services were read" in err and "--allow-empty" in err
    (tmp_path / "cm.yaml").write_text("kind: ConfigMap\nmetadata: {name: x}\n")
    code, out, err = run(capsys, "discover", "-f", str(tmp_path / "cm.yaml"))
    assert (code, out) == (1, "")


def test_allow_empty_prints_the_empty_toolsets_on_purpose(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, _ = run(capsys, "discover", "-f", "-", "--allow-empty")
    assert code == 0
    holmes = yaml.safe_load(yaml.safe_load(out)["data"]["custom_toolset.yaml"])
    assert list(holmes["toolsets"]) == ["dyntoolset/none"]


def test_a_missing_input_prints_nothing_even_with_allow_empty(capsys, tmp_path):
    for extra in ([], ["--allow-empty"]):
        code, out, err = run(
            capsys, "discover", "-f", EXAMPLE, "-f", str(tmp_path / "nonexistent"), *extra
        )
        assert (code, out) == (1, "")
        assert f"error: {tmp_path / 'nonexistent'}: no such file or directory" in err
        assert "nothing printed: 1 input error(s)" in err


def test_an_invalid_service_object_alone_does_not_stop_the_output(capsys, tmp_path):
    # The API server would refuse it, so no toolset of it can exist to be removed.
    (tmp_path / "svc.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: p}\nspec: {ports: [{port: nope}]}\n"
    )
    code, out, err = run(capsys, "discover", "-f", EXAMPLE, "-f", str(tmp_path / "svc.yaml"))
    assert code == 1
    assert yaml.safe_load(out)["kind"] == "ConfigMap"
    assert "invalid Service: spec.ports[0].port must be an integer" in err


@pytest.mark.parametrize("stdin", ["none", "closed"])
def test_stdin_closed_is_an_input_error_not_a_traceback(capsys, monkeypatch, stdin):
    if stdin == "none":  # how Python starts with fd 0 closed (<&-)
        monkeypatch.setattr("sys.stdin", None)
    else:
        closed = io.TextIOWrapper(io.BytesIO(b""))
        closed.close()
        monkeypatch.setattr("sys.stdin", closed)
    code, out, err = run(capsys, "discover", "-f", "-")
    assert (code, out) == (1, "")
    assert "error: <stdin>: " in err and "standard input" in err


def test_stdin_closed_in_a_real_process(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dyntoolset", "discover", "-f", "-"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        env={"DYNTOOLSET_LOAD_PLUGINS": "", "PATH": "/usr/bin:/bin"},
        preexec_fn=lambda: __import__("os").close(0),
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "standard input is closed" in result.stderr
    assert "Traceback" not in result.stderr


def test_duplicate_services_are_named(capsys, tmp_path):
    svc = "apiVersion: v1\nkind: Service\nmetadata: {name: p, namespace: a}\nspec: {ports: [{port: 80}]}\n"
    (tmp_path / "one.yaml").write_text(svc)
    (tmp_path / "two.yaml").write_text(svc)
    code, _, err = run(capsys, "discover", "-f", str(tmp_path))
    assert code == 0
    assert (
        f"warning: Service a/p is read 2 times ({tmp_path / 'one.yaml'}:document 1, "
        f"{tmp_path / 'two.yaml'}:document 1); only the last one is used"
    ) in err


def test_every_repeated_service_is_named_once_with_all_its_places_in_reading_order(
    capsys, tmp_path
):
    # The places are only written out for repeated Services (issue 15): each
    # must still be named once, with every place, in the order first read.
    def svc(name: str) -> str:
        return (
            f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: a}}\n"
            "spec: {ports: [{port: 80}]}\n"
        )

    (tmp_path / "one.yaml").write_text("---\n".join([svc("z"), svc("unique"), svc("b")]))
    (tmp_path / "two.yaml").write_text("---\n".join([svc("b"), svc("z"), svc("z")]))
    code, _, err = run(capsys, "discover", "-f", str(tmp_path))
    assert code == 0
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    warnings = [line for line in err.splitlines() if line.startswith("warning: Service")]
    assert warnings == [
        f"warning: Service a/z is read 3 times ({one}:document 1, {two}:document 2, "
        f"{two}:document 3); only the last one is used",
        f"warning: Service a/b is read 2 times ({one}:document 3, {two}:document 1); "
        "only the last one is used",
    ]


def test_a_missing_config_file_is_an_error(capsys, tmp_path):
    missing = str(tmp_path / "detector-config.yaml")
    for argv in (("discover", "-f", EXAMPLE, "-c", missing), ("plugins", "-c", missing)):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (2, "")
        assert f"invalid configuration in {missing}" in err
        assert "$: no such file (leave the path out to use the defaults)" in err


def test_an_immutable_existing_configmap_that_would_change_is_warned_about(capsys, tmp_path):
    code, out, _ = run(capsys, "discover", "-f", EXAMPLE)
    existing = yaml.safe_load(out)
    existing["immutable"] = True
    path = tmp_path / "cm.yaml"
    path.write_text(yaml.safe_dump(existing))
    # Unchanged data: nothing to refuse, nothing said.
    code, out, err = run(capsys, "discover", "-f", EXAMPLE, "--existing", str(path))
    assert code == 0 and "immutable" not in err
    existing["data"]["toolset.json"] = "{}"
    path.write_text(yaml.safe_dump(existing))
    code, out, err = run(capsys, "discover", "-f", EXAMPLE, "--existing", str(path))
    assert code == 0 and yaml.safe_load(out)["immutable"] is True
    assert (
        "warning: the existing ConfigMap is immutable (immutable: true) and its data changes: "
        "the API server will refuse the update; delete the ConfigMap and create it again"
    ) in err


@pytest.mark.parametrize("paths", [[EXAMPLE], ["/nonexistent/services.json"]])
def test_discover_pauses_the_cycle_collector_while_it_runs_and_restores_it(
    capsys, monkeypatch, paths
):
    """Issue 15, workload 1: full collections over a parsed cluster dump free
    nothing and cost a third of the run. Paused while reading and discovering,
    enabled again afterwards, also when the input is refused."""
    import gc

    from dyntoolset import cli

    seen: list[bool] = []
    real = cli.read_manifests

    def spy(arguments):
        seen.append(gc.isenabled())
        return real(arguments)

    monkeypatch.setattr(cli, "read_manifests", spy)
    assert gc.isenabled()
    code, _, _ = run(capsys, "discover", *(a for p in paths for a in ("-f", p)))
    assert code == (0 if paths == [EXAMPLE] else 1)
    assert seen == [False]
    assert gc.isenabled()


def test_discover_leaves_a_paused_collector_paused(capsys):
    import gc

    gc.disable()
    try:
        code, _, _ = run(capsys, "discover", "-f", EXAMPLE)
        assert code == 0 and not gc.isenabled()
    finally:
        gc.enable()
