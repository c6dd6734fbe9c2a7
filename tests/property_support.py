"""Support for property tests that reach what they claim.

A property test whose examples are mostly refused early proves little about
its accept path. Two tools keep that from happening:

:func:`mostly`
    draws a valid value most of the time and a hostile one as a deliberate
    minority, so hostile input is covered without starving the accept path.

:class:`Outcomes`
    counts which path each example took. A test declares the share each path
    must reach, takes the ``outcomes`` fixture (tests/conftest.py) and
    records every example::

        @pytest.mark.outcomes({"accepted": 0.3})
        @settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(...)
        def test_something(outcomes: Outcomes, value: str) -> None:
            ...
            outcomes.saw("accepted" if ok else "refused")

    After the last example the test fails if "accepted" was seen in fewer
    than 30% of the observations. Every label is also a
    :func:`hypothesis.event`, so ``pytest --hypothesis-show-statistics`` shows
    the split. (The fixture is function-scoped on purpose: it must outlive
    the examples to count them, which is what Hypothesis'
    ``function_scoped_fixture`` health check warns of.)

``hypothesis.target()`` is not used: its optimisation pass doubled the run
time of the engine property without reaching the accept path more often
than balanced strategies do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TypeVar

from hypothesis import event
from hypothesis import strategies as st

T = TypeVar("T")

#: The share the accept path of a property test must reach.
ACCEPT_SHARE = 0.3


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True about one time in ``n``.

    Not ``draw(st.integers(0, n - 1)) == 0``: Hypothesis favours the simplest
    value, and for a small range 0 comes up two or three times too often.
    """
    return draw(st.integers(0, 99)) >= 100 - 100 // n


@st.composite
def mostly(
    draw: st.DrawFn,
    valid: st.SearchStrategy[T],
    hostile: st.SearchStrategy[T],
    hostile_one_in: int = 5,
) -> T:
    """A value of ``valid``, or about one time in ``hostile_one_in`` one of ``hostile``.

    Hypothesis never repeats an example, so when ``valid`` has few distinct
    values the hostile side still gets a larger share than nominal: give
    ``valid`` some variety, and let :class:`Outcomes` check the result.
    """
    return draw(hostile if one_in(draw, hostile_one_in) else valid)


class Outcomes:
    """Counts of the labels seen over the observations of one property test."""

    def __init__(self, required: Mapping[str, float]) -> None:
        #: label -> the share of observations it must reach
        self.required = dict(required)
        self.counts: Counter[str] = Counter()
        self.observations = 0

    def saw(self, *labels: str) -> None:
        """Record one observation (usually one example) carrying ``labels``."""
        self.observations += 1
        for label in labels:
            self.counts[label] += 1
            event(label)

    def share(self, label: str) -> float:
        """The share of observations that carried ``label``."""
        return self.counts[label] / self.observations if self.observations else 0.0

    def check(self) -> None:
        """Fail unless every required label reached its share."""
        assert self.observations, "the property test recorded no outcome"
        short = {
            label: f"{self.share(label):.0%} < {wanted:.0%}"
            for label, wanted in self.required.items()
            if self.share(label) < wanted
        }
        assert not short, (
            f"paths taken too rarely over {self.observations} observations: {short}; "
            f"rebalance the strategies (seen: {dict(self.counts)})"
        )
