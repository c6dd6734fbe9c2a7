"""A run in process: /ready follows the cache, /health the loop (RELIABILITY's test plan:
"first list fails -> no write, /ready false, /health true")."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from dyntoolset.controller.runner import Runner, RunOptions
from dyntoolset.testing.apiserver import ApiServer
from tests.kube._support import prometheus, wait_for


def get(address: tuple[str, int], path: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_until_the_first_list_succeeds_nothing_is_written_and_only_ready_fails(
    apiserver: ApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    apiserver.create(prometheus())
    failing = apiserver.fail(500, verb="list", resource="services")
    config = tmp_path / "config.yaml"
    config.write_text("health_checks: {enabled: false}\n")
    runner = Runner(
        RunOptions(
            kubeconfig=str(apiserver.write_kubeconfig(tmp_path / "kubeconfig")),
            config_file=str(config),
            listen=("127.0.0.1", 0),
            metrics_listen=None,
        ),
        inside=False,
    )
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(runner.run()), daemon=True)
    thread.start()
    try:
        record = wait_for(
            lambda: next(
                (
                    r
                    for r in caplog.records
                    if getattr(r, "dyntoolset", {}).get("event") == "listening"
                ),
                None,
            ),
            60,
            "the probes",
        )
        host, port = record.dyntoolset["address"].rsplit(":", 1)
        address = (host, int(port))
        wait_for(lambda: failing.fired >= 2, 60, "the list to fail twice")
        status, body = get(address, "/ready")
        assert status == 503
        assert body["checks"]["cache_synced"] == {
            "ok": False,
            "detail": "waiting for a complete list of Services",
        }
        assert get(address, "/health")[0] == 200
        assert apiserver.writes("configmaps") == []
        # The API recovers: the cache syncs, the ConfigMap is written, /ready turns 200.
        failing.remove()
        wait_for(lambda: apiserver.writes("configmaps"), 60, "the first write")
        wait_for(lambda: get(address, "/ready")[0] == 200, 60, "/ready 200")
    finally:
        runner.request_stop()
        thread.join(60)
    assert result == [0]
