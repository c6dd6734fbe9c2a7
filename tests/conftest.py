"""Fixtures and hooks of the core test suite (the repository's conftest.py has the collection rules)."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.property_support import Outcomes


@pytest.fixture
def outcomes(request: pytest.FixtureRequest) -> Outcomes:
    """Counts the paths a property test's examples take; see tests/property_support.py.

    The shares come from the test's ``@pytest.mark.outcomes({label: share})``;
    they are checked once the test has passed (in :func:`pytest_runtest_call`).
    """
    marker = request.node.get_closest_marker("outcomes")
    if marker is None or len(marker.args) != 1:
        pytest.fail(
            "a test using the outcomes fixture needs @pytest.mark.outcomes({label: share})",
            pytrace=False,
        )
    return Outcomes(marker.args[0])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """After a passing test that recorded outcomes, check their shares (a failure, not an error)."""
    result = yield
    recorded = getattr(item, "funcargs", {}).get("outcomes")
    if isinstance(recorded, Outcomes):
        recorded.check()
    return result
