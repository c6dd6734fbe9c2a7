"""Workload 6: one health-check round over 1,000 endpoints on loopback, 10% black-holed.

Real sockets: the healthy endpoints are served by an asyncio HTTP server in
another process, listening on several ports; the black-holed ones are listening
sockets that never accept (the kernel completes the handshake until the
backlog is full, then drops SYNs: either way no answer ever comes). Every
endpoint is a Service DNS name that an injected resolver maps to 127.0.0.1;
the only configuration is what the workload prescribes (a 2 s timeout and 1
retry) and ``allowed_networks: [127.0.0.0/8]``, without which the SSRF guard
refuses loopback. Everything else, the concurrency included, is the default.

Compared with checking serially (concurrency 1), extrapolated from a sample
of the same mix (serial checking of 1,000 endpoints takes minutes), and with
the former default concurrency of 32. Target: the round's wall time under 3x
the timeout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import attrs

from benchmarks.harness import Figure, below, info, median, peak_rss_mib
from dyntoolset.config import load_config_text
from dyntoolset.health import HealthChecker
from dyntoolset.model import Discovered
from dyntoolset.plugins import load_plugins
from dyntoolset.testing import make_service

TIMEOUT = 2.0
#: In ``--quick`` mode: the smoke test only checks that the workload runs.
QUICK_TIMEOUT = 0.2


def config_text(timeout: float) -> str:
    return f"""
health_checks:
  allowed_networks: ["127.0.0.0/8"]
detectors:
  prometheus:
    health_check: {{timeout: {timeout * 1000:g}ms, retries: 1}}
"""


#: The healthy backends: an asyncio server on several ports, printing them.
SERVER = """
import asyncio, sys

RESPONSE = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok"

async def answer(reader, writer):
    try:
        await reader.readuntil(b"\\r\\n\\r\\n")
        writer.write(RESPONSE)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()

async def main(ports):
    servers = [await asyncio.start_server(answer, "127.0.0.1", 0, backlog=1024) for _ in range(ports)]
    print(" ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes

asyncio.run(main(int(sys.argv[1])))
"""


@contextmanager
def healthy_server(ports: int) -> Iterator[list[int]]:
    """Backends answering 200 on ``ports`` loopback ports, in a process of their own:
    real backends do not share the checker's CPU and interpreter lock."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(ports)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield [int(port) for port in process.stdout.readline().split()]
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(10)


@contextmanager
def black_holes(count: int) -> Iterator[list[int]]:
    """``count`` listening sockets that never accept."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sockets.append(sock)
    try:
        yield [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def endpoints(count: int, healthy_ports: list[int], hole_ports: list[int]) -> list[Discovered]:
    """``count`` Prometheus services, every tenth one on a black-holed port."""
    items = []
    for index in range(count):
        holed = index % 10 == 3
        ports = hole_ports if holed else healthy_ports
        port = ports[index % len(ports)]
        service = make_service(f"prom-{index}", f"ns-{index % 50}", ports=[(port, "web")])
        items.append(
            Discovered(
                service=service,
                detector="prometheus",
                type="prometheus",
                endpoint=f"http://{service.name}.{service.namespace}.svc.cluster.local:{port}",
                health_path="/-/ready",
                port=service.ports[0],
            )
        )
    return items


class _FdWatch:
    """The peak number of open file descriptors of this process, sampled every 10 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, len(os.listdir("/proc/self/fd")))

    def __enter__(self) -> _FdWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def round_seconds(
    items: list[Discovered], timeout: float, concurrency: int | None
) -> tuple[float, int, int]:
    """One round with a fresh checker: (wall seconds, healthy count, peak open fds)."""
    config = load_config_text(config_text(timeout), "workload 6", load_plugins())
    if concurrency is not None:
        config = attrs.evolve(
            config, health_checks=attrs.evolve(config.health_checks, concurrency=concurrency)
        )
    checker = HealthChecker.from_config(config, resolver=lambda host: ["127.0.0.1"])
    with _FdWatch() as fds:
        start = time.perf_counter()
        result = checker.check(items)
        wall = time.perf_counter() - start
    return wall, sum(1 for d in result if d.health and d.health.healthy), fds.peak


def run(quick: bool) -> list[Figure]:
    count = 40 if quick else 1_000
    runs = 1 if quick else 3
    sample = 20
    timeout = QUICK_TIMEOUT if quick else TIMEOUT
    default_concurrency = load_config_text(
        config_text(timeout), "workload 6", load_plugins()
    ).health_checks
    with healthy_server(8) as healthy_ports, black_holes(10) as hole_ports:
        items = endpoints(count, healthy_ports, hole_ports)
        rounds = [round_seconds(items, timeout, None) for _ in range(runs)]
        wall = median([r[0] for r in rounds])
        healthy, fds = rounds[0][1], max(r[2] for r in rounds)
        serial_sample = round_seconds(items[:sample], timeout, 1)[0]
        serial = serial_sample * count / sample
        figures = [
            below(
                f"round wall time / timeout ({count} endpoints)",
                wall / timeout,
                3,
                "x timeout",
                f"{wall:.2f} s at the default concurrency "
                f"{default_concurrency.concurrency}, median of {runs}; "
                f"{healthy} healthy of {count}",
            ),
            info(
                "serial checking (concurrency 1)",
                serial,
                "s",
                f"extrapolated from {sample} endpoints ({serial_sample:.1f} s); "
                f"{serial / wall:.0f}x the default's wall time",
            ),
            info("peak open file descriptors", fds, "", "the whole process, sockets included"),
        ]
        if not quick:
            old = round_seconds(items, timeout, 32)[0]
            figures.append(info("round wall time at concurrency 32 (former default)", old, "s"))
        figures.append(info("peak RSS", peak_rss_mib(), "MiB"))
    return figures
