"""pytest fixtures for the Kubernetes API emulator.

Enable with ``pytest_plugins = ["dyntoolset.testing.pytest_plugin"]`` in a
``conftest.py``. Fixtures:

``apiserver``
    A running :class:`~dyntoolset.testing.apiserver.ApiServer` (fresh per
    test), with ``api_client`` and ``kubeconfig_path`` ready.
``apiserver_factory``
    A callable taking :class:`ApiServer` keyword arguments, for tests that
    need options (tokens, a small history window, fast bookmarks) or two
    servers; every server it starts is stopped after the test.

Options can also come from a marker: ``@pytest.mark.apiserver(history_limit=5)``
configures the ``apiserver`` fixture.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dyntoolset.testing.apiserver import ApiServer


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``apiserver`` marker."""
    config.addinivalue_line(
        "markers", "apiserver(**options): keyword arguments for the apiserver fixture's ApiServer"
    )


@pytest.fixture
def apiserver_factory() -> Iterator[Callable[..., ApiServer]]:
    """Start emulators with the given options; all are stopped at teardown."""
    started: list[ApiServer] = []

    def start(**options: Any) -> ApiServer:
        server = ApiServer(**options).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()
        for error in server.server_errors:
            warnings.warn(f"the API emulator failed while serving: {error}", stacklevel=1)


@pytest.fixture
def apiserver(
    request: pytest.FixtureRequest, apiserver_factory: Callable[..., ApiServer]
) -> ApiServer:
    """A running Kubernetes API emulator on a loopback port."""
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("apiserver"))):
        options.update(marker.kwargs)
    return apiserver_factory(**options)
