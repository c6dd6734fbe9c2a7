"""The controller's tests: the output ConfigMap's namespace exists, as in a real cluster."""

from __future__ import annotations

import pytest

# The status stack's fixtures, for every test here that names them (they use the
# ``make_stack`` fixture the test module imports from tests.kube.conftest).
from tests.controller._status_support import backend, running  # noqa: F401
from tests.kube.conftest import create_namespace


@pytest.fixture(autouse=True)
def output_namespace(request: pytest.FixtureRequest) -> None:
    """Tests that use the ``apiserver`` fixture get the output namespace created."""
    if "apiserver" in request.fixturenames:
        create_namespace(request.getfixturevalue("apiserver"))
