"""streams.recall.lists.merge against a plain-Python brute force: the best score per item, its
interest, padding and excluded items dropped, ties by id, on both of the ranking loop's paths
(a table of ids, or ids numbered first)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import ranking
from streams.recall.lists import merge


def brute(ids: np.ndarray, scores: np.ndarray, exclude: list[list[int]], top_k: int
          ) -> list[tuple[list[int], list[float], list[int]]]:
    out = []
    for row in range(ids.shape[0]):
        best: dict[int, tuple[float, int]] = {}  # item -> (score, interest of the first best)
        for k in range(ids.shape[1]):
            for item, score in zip(ids[row, k].tolist(), scores[row, k].tolist(), strict=True):
                if item < 0 or item in exclude[row]:
                    continue
                if item not in best or score > best[item][0]:
                    best[item] = (score, k)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top_k]
        out.append(([i for i, _ in ranked], [s for _, (s, _) in ranked],
                    [k for _, (_, k) in ranked]))
    return out


@st.composite
def searches(draw: st.DrawFn) -> tuple:
    batch, lists, per_list = draw(st.integers(1, 4)), draw(st.integers(1, 4)), \
        draw(st.integers(1, 8))
    huge = draw(st.booleans())
    item = st.integers(-1, 2**40) if huge else st.integers(-1, 30)  # -1: padding
    ids = np.array(draw(st.lists(item, min_size=batch * lists * per_list,
                                 max_size=batch * lists * per_list)), dtype=np.int64)
    # scores on a coarse grid: equal scores across lists and items test the tie order
    scores = np.array(draw(st.lists(st.sampled_from([-0.5, 0.0, 0.25, 1.0]),
                                    min_size=ids.size, max_size=ids.size)), dtype=np.float32)
    exclude = [draw(st.lists(st.integers(0, 30) if not huge else item, max_size=12))
               for _ in range(batch)]
    shape = (batch, lists, per_list)
    return ids.reshape(shape), scores.reshape(shape), exclude, draw(st.integers(0, 10))


@pytest.mark.parametrize("dense_factor", [0, 1000])
@settings(max_examples=300, deadline=None)
@given(search=searches())
def test_merge_equals_brute_force(search: tuple, dense_factor: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ranking, "DENSE_FACTOR", dense_factor)
        assert merge(*search) == brute(*search)
