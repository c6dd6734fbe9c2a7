"""Fixtures: loopback backends and black holes, stopped after each test."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.health._servers import Backend, BlackHole, make_cert


@pytest.fixture
def backend() -> Iterator[Callable[..., Backend]]:
    started: list[Backend] = []

    def start(*args: Any, **kwargs: Any) -> Backend:
        server = Backend(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def black_hole() -> Iterator[Callable[..., BlackHole]]:
    opened: list[BlackHole] = []

    def open_(*args: Any, **kwargs: Any) -> BlackHole:
        hole = BlackHole(*args, **kwargs)
        opened.append(hole)
        return hole

    yield open_
    for hole in opened:
        hole.close()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(key, cert) of a self-signed certificate for prom.monitoring.svc.cluster.local."""
    return make_cert(tmp_path_factory.mktemp("tls"), "prom.monitoring.svc.cluster.local")


@pytest.fixture
def tls_server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    key, cert = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    return context
