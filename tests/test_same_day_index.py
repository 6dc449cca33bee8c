"""The same-day index (`runtime.DayLines`) answers exactly as the plain walk over the day's lines does
(`same_day_hit` over a list), for every qualifier, as lines are added: it only makes the answer linear in
the asking line's values (issue 16 item 2; bench/edges.py shows the growth)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from payrule.runtime import DayLines, same_day_hit


class L:
    def __init__(self, i: int, muscles: tuple):
        self.i, self.muscles = i, muscles

    def __repr__(self) -> str:  # pragma: no cover - shown when a case fails
        return f"L{self.i}{self.muscles}"


VALUES = st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=3, unique=True).map(tuple)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(values=st.lists(VALUES, min_size=0, max_size=12), asks=st.lists(st.integers(0, 11), max_size=6),
       extra=VALUES, grow=st.integers(0, 12))
def test_the_index_answers_as_the_walk_does(values, asks, extra, grow):
    lines = [L(i, v) for i, v in enumerate(values)]
    day = DayLines()
    for ln in lines[:grow]:
        day.append(ln)
    outsider = L(99, extra)
    for step in range(2):  # ask, add the rest of the lines, ask again: the index keeps up
        present = lines[: len(day)]
        for who in [present[a % len(present)] for a in asks if present] + [outsider]:
            for sharing, lacking in ((None, None), ("muscles", None), (None, "muscles")):
                want = same_day_hit(list(present), who, sharing, lacking)
                got = day.hit(who, sharing, lacking)
                assert (got and (got.other, got.shared)) == (want and (want.other, want.shared))
        for ln in lines[len(day):]:
            day.append(ln)
