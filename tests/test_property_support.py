"""The share check of property tests (tests/property_support.py and the
``outcomes`` fixture), run the way pytest runs it."""

from __future__ import annotations

import pytest

from tests.property_support import Outcomes

pytest_plugins = ["pytester"]

CONFTEST = """
from tests.conftest import outcomes, pytest_runtest_call

def pytest_configure(config):
    config.addinivalue_line("markers", "outcomes(shares): required shares")
"""

PROPERTY = """
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

@pytest.mark.outcomes({{"even": {share}}})
@settings(max_examples=50, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 9))
def test_numbers(outcomes, n):
    assert 0 <= n <= 9
    outcomes.saw("even" if n % 2 == 0 else "odd")
"""


def run_property(pytester: pytest.Pytester, share: float) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_numbers=PROPERTY.format(share=share))
    return pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")


def test_a_path_taken_often_enough_passes(pytester: pytest.Pytester) -> None:
    run_property(pytester, 0.1).assert_outcomes(passed=1)


def test_a_path_taken_too_rarely_fails_the_test(pytester: pytest.Pytester) -> None:
    result = run_property(pytester, 0.95)
    result.assert_outcomes(failed=1)  # a failure of the test, not an error in teardown
    result.stdout.fnmatch_lines(["*paths taken too rarely over * observations*'even'*< 95%*"])


def test_the_fixture_without_its_marker_says_what_is_missing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_bare="def test_bare(outcomes):\n    assert outcomes\n")
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs @pytest.mark.outcomes({label: share})*"])


def test_shares_are_counted_per_observation(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    monkeypatch.setattr("tests.property_support.event", events.append)
    recorded = Outcomes({"accepted": 0.5, "override": 0.25})
    recorded.saw("accepted", "override")
    recorded.saw("accepted")
    recorded.saw("refused")
    recorded.saw("refused")
    assert events == ["accepted", "override", "accepted", "refused", "refused"]
    assert (recorded.share("accepted"), recorded.share("override")) == (0.5, 0.25)
    recorded.check()
    recorded.saw("refused")
    with pytest.raises(AssertionError, match=r"'accepted': '40% < 50%'"):
        recorded.check()
    with pytest.raises(AssertionError, match="recorded no outcome"):
        Outcomes({"accepted": 0.3}).check()
