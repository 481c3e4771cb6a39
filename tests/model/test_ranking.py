"""model.ranking.top_per_row against a plain-Python brute force: every path (ids marked in a
table, sorted, or numbered first), ties, exclusions and short rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import ranking
from model.ranking import Ranked, top_per_row, top_per_row_flat


def brute(n_rows: int, rows: list[int], weights: list[float], cands: list[np.ndarray],
          vals: list[np.ndarray], exclude: list[set[int]], top_k: int
          ) -> list[tuple[list[int], list[float]]]:
    sums: list[dict[int, float]] = [{} for _ in range(n_rows)]
    for row, w, ids, vs in zip(rows, weights, cands, vals, strict=True):
        for j, v in zip(ids.tolist(), vs.tolist(), strict=True):
            sums[row][j] = sums[row].get(j, 0.0) + w * v
    out = []
    for row in range(n_rows):
        ranked = sorted((-s, j) for j, s in sums[row].items() if j not in exclude[row])
        out.append(([j for _, j in ranked[:top_k]], [-s for s, _ in ranked[:top_k]]))
    return out


@st.composite
def batches(draw: st.DrawFn) -> tuple:
    n_rows = draw(st.integers(1, 6))
    huge = draw(st.booleans())
    low = draw(st.sampled_from([0, -4]))
    item = st.integers(0, 2**40) if huge else st.integers(low, low + 40)
    blocks = draw(st.lists(st.tuples(st.integers(0, n_rows - 1),
                                     st.sampled_from([0.5, 1.0, 2.0]),
                                     st.lists(item, min_size=1, max_size=12, unique=True)),
                           max_size=10))
    rows = [b[0] for b in blocks]
    weights = [b[1] for b in blocks]
    cands = [np.array(b[2], dtype=np.int64) for b in blocks]
    # values on a coarse grid: many equal scores, so the tie order is tested
    vals = [np.array(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5]), min_size=len(c),
                                   max_size=len(c)))) for c in cands]
    exclude = [set(draw(st.lists(st.integers(low, low + 40), max_size=6)))
               for _ in range(n_rows)]
    return n_rows, rows, weights, cands, vals, exclude, draw(st.integers(0, 8))


@pytest.mark.parametrize("dense_factor", [0, 1000])  # sorted; a table when ids are small
@settings(max_examples=300, deadline=None)
@given(batch=batches())
def test_top_per_row_equals_brute_force(batch: tuple, dense_factor: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ranking, "DENSE_FACTOR", dense_factor)
        assert top_per_row(*batch) == brute(*batch)
        flat = top_per_row_flat(*batch)
        assert flat.pairs() == brute(*batch)
        # the flat rows without padding, one after the other, and back from lists
        assert flat.kept().tolist() == [j for items, _ in brute(*batch) for j in items]
        assert Ranked.of_pairs(flat.pairs()).pairs() == flat.pairs()


def test_no_blocks_gives_empty_rows() -> None:
    assert top_per_row(2, [], [], [], [], [set(), set()], 5) == [([], []), ([], [])]
