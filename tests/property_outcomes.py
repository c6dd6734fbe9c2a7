"""Which path each example of a property test took, and a check that the path
that matters was taken often enough.

A property test whose examples are mostly refused early proves little about
the accept path. Tests record each example's outcome with :meth:`Outcomes.saw`
(also a :func:`hypothesis.event`, so ``pytest --hypothesis-show-statistics``
shows the split) and end with :meth:`Outcomes.assert_share`, which fails
when a path was reached in too small a share of the examples::

    def test_something() -> None:
        outcomes = Outcomes()

        @given(...)
        def check(value):
            ...
            outcomes.saw("accepted" if ok else "refused")

        check()
        outcomes.assert_share("accepted", at_least=0.3)
"""

from __future__ import annotations

from collections import Counter

from hypothesis import event

#: The share of examples the accept path must get, unless a test says otherwise.
ACCEPT_SHARE = 0.3


class Outcomes:
    """Counts of the paths the examples of one property test took."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def saw(self, path: str) -> None:
        """Record that the current example took ``path``."""
        self.counts[path] += 1
        event(path)

    @property
    def total(self) -> int:
        """How many examples were recorded."""
        return sum(self.counts.values())

    def share(self, *paths: str) -> float:
        """The share of examples that took any of ``paths``."""
        return sum(self.counts[p] for p in paths) / self.total if self.total else 0.0

    def assert_share(self, *paths: str, at_least: float = ACCEPT_SHARE) -> None:
        """Fail unless at least ``at_least`` of the examples took one of ``paths``."""
        assert self.total, "the property ran no examples"
        share = self.share(*paths)
        assert share >= at_least, (
            f"only {share:.0%} of {self.total} examples took {' or '.join(paths)} "
            f"(wanted {at_least:.0%}); the strategies need rebalancing: {dict(self.counts)}"
        )
