"""``dyntoolset run``'s command line, in process: refusals before anything runs, and --once."""

from __future__ import annotations

from pathlib import Path

import pytest

from dyntoolset.cli import main
from dyntoolset.controller.runner import Runner, RunOptions, configmap_diff
from dyntoolset.testing.apiserver import ApiServer
from tests.kube._support import prometheus

# Problems in both phases of validation: every one must be listed.
INVALID = """\
resync_interval: -1
detectors:
  grafana:
    enabled: maybe
  nosuchdetector: {}
"""


@pytest.fixture
def kubeconfig(apiserver: ApiServer, tmp_path: Path) -> Path:
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig")


def problems_of(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.startswith("  $")]


def test_an_invalid_configuration_file_is_exit_2_with_every_problem(
    kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text(INVALID)
    assert main(["run", "--kubeconfig", str(kubeconfig), "-c", str(bad), "--once"]) == 2
    err = capsys.readouterr().err
    assert f"invalid configuration in {bad}" in err
    assert len(problems_of(err)) >= 3


def test_an_invalid_config_configmap_is_exit_2_listing_the_same_problems(
    apiserver: ApiServer, kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text(INVALID)
    assert main(["run", "--kubeconfig", str(kubeconfig), "-c", str(bad), "--once"]) == 2
    from_file = problems_of(capsys.readouterr().err)
    apiserver.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "ops"},
            "data": {"config.yaml": INVALID},
        }
    )
    argv = ["run", "--kubeconfig", str(kubeconfig), "--config-configmap", "ops/cfg", "--once"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "invalid configuration in configmap ops/cfg:config.yaml" in err
    assert problems_of(err) == from_file
    assert apiserver.writes("configmaps") == []  # nothing ran


def test_a_missing_key_in_the_config_configmap_is_exit_2(
    apiserver: ApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apiserver.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "ops"},
            "data": {"other.yaml": ""},
        }
    )
    argv = ["run", "--kubeconfig", str(kubeconfig), "--config-configmap", "ops/cfg:x.yaml"]
    assert main([*argv, "--once"]) == 2
    assert "no data key 'x.yaml' (its keys: other.yaml)" in capsys.readouterr().err


def test_config_from_a_configmap_drives_the_run(
    apiserver: ApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apiserver.create(prometheus())
    apiserver.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "ops"},
            "data": {
                "config.yaml": "health_checks: {enabled: false}\n"
                "output: {namespace: ops, name: toolsets}\n"
            },
        }
    )
    argv = ["run", "--kubeconfig", str(kubeconfig), "--config-configmap", "ops/cfg", "--once"]
    assert main(argv) == 0, capsys.readouterr().err
    written = apiserver.get("configmaps", "ops", "toolsets")
    assert written is not None
    assert "prometheus.monitoring" in str(written["data"])


def test_a_missing_config_configmap_means_defaults(
    apiserver: ApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--kubeconfig", str(kubeconfig), "--config-configmap", "ops/none", "--dry-run"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "ConfigMap ops/none not found; using the default configuration" in captured.err
    assert captured.out.startswith("--- /dev/null\n+++ generated/kubernaut-system/")
    assert apiserver.writes("configmaps") == []


def test_unusable_credentials_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert main(["run", "--kubeconfig", str(missing), "--once"]) == 2
    err = capsys.readouterr().err
    assert f"cannot load Kubernetes credentials from {missing}" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "8080"], "expected HOST:PORT"),
        (["--metrics-listen", "host:70000"], "expected HOST:PORT"),
        (["--metrics-namespace-limit", "-1"], "expected 0 or more, not -1"),
        (["--metrics-namespace-limit", "many"], "expected a whole number, not 'many'"),
        (["--config-configmap", "just-a-name"], "expected NAMESPACE/NAME"),
        (["-c", "x.yaml", "--config-configmap", "a/b"], "not allowed with argument"),
        (["--once", "--dry-run"], "not allowed with argument"),
        (["--shutdown-grace-period", "0"], "expected a number of seconds above 0"),
        (["--log-format", "xml"], "invalid choice"),
        (["--config-poll-interval", "0"], "expected a number of seconds above 0"),
    ],
)
def test_bad_flags_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "watch", "interval"),
    [([], True, 2.0), (["--no-config-watch", "--config-poll-interval", "0.5"], False, 0.5)],
)
def test_the_config_watch_flags_reach_the_runner(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], watch: bool, interval: float
) -> None:
    seen: list[RunOptions] = []

    def run(self: Runner) -> int:
        seen.append(self.options)
        return 0

    monkeypatch.setattr(Runner, "run", run)
    assert main(["run", *argv]) == 0
    (options,) = seen
    assert (options.config_watch, options.config_poll_interval) == (watch, interval)


def test_lease_timings_without_a_gap_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--leader-elect-lease-duration", "5", "--leader-elect-renew-deadline", "5"]
    assert main(argv) == 2
    assert "lease_duration > renew_deadline" in capsys.readouterr().err


def test_the_diff_ignores_the_order_of_fields() -> None:
    live = {
        "apiVersion": "v1",
        "data": {"b": "2\n", "a": "1\n"},
        "kind": "ConfigMap",
        "metadata": {"name": "t", "namespace": "ops", "resourceVersion": "7", "labels": {"x": "y"}},
    }
    generated = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"labels": {"x": "y"}, "namespace": "ops", "name": "t"},
        "data": {"a": "1\n", "b": "2\n"},
    }
    assert configmap_diff(live, generated, "ops/t") == ""
    changed = {**generated, "data": {"a": "1\n", "b": "3\n"}}
    diff = configmap_diff(live, changed, "ops/t")
    assert diff.splitlines()[:2] == ["--- live/ops/t", "+++ generated/ops/t"]
    changes = [line for line in diff.splitlines()[2:] if line.startswith(("-", "+"))]
    assert changes == ["-    2", "+    3"]  # the block scalar of key b, nothing else


def test_a_config_configmap_the_api_refuses_is_exit_1_with_the_rule_to_add(
    apiserver: ApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    apiserver.fail(403, reason="Forbidden", verb="get", resource="configmaps")
    argv = ["run", "--kubeconfig", str(kubeconfig), "--config-configmap", "ops/cfg", "--once"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "cannot read the configuration from configmap ops/cfg:config.yaml" in err
    assert "resources: [configmaps], verbs: [get] (resourceNames: [cfg]) in namespace ops" in err
