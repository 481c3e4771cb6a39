"""model.streamed.StreamedVectors against a plain dict, over random add/remove/compact runs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from model.streamed import StreamedVectors

DIM = 3
ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.lists(st.integers(0, 40), max_size=30)),
    st.tuples(st.just("remove"), st.lists(st.integers(0, 40), max_size=10)),
    st.tuples(st.just("compact"), st.lists(st.integers(0, 40), max_size=5)),
), max_size=40)


def check(table: StreamedVectors, want: dict[int, np.ndarray]) -> None:
    assert len(table) == len(want)
    assert sorted(table.ids.tolist()) == sorted(want)
    query = np.arange(-2, 45, dtype=np.int64)  # [T] held, missing and negative ids
    found, rows = table.find(query)
    assert found.tolist() == [int(q) in want for q in query]
    for q, ok, row in zip(query.tolist(), found, rows, strict=True):
        if ok:
            np.testing.assert_array_equal(table.vectors[row], want[q])


@settings(max_examples=150, deadline=None)
@given(ops)
def test_matches_a_dict(run: list[tuple[str, list[int]]]) -> None:
    table = StreamedVectors(DIM, capacity=2)  # small: the buffer grows many times
    want: dict[int, np.ndarray] = {}
    counter = 0
    for op, ids in run:
        if op == "add":
            vectors = np.arange(counter, counter + DIM * len(ids), dtype=np.float32).reshape(
                len(ids), DIM)  # [M, D] distinct values per row
            counter += DIM * len(ids)
            table.add(ids, vectors)
            want.update(zip(ids, vectors, strict=True))  # the last of a repeated id wins
        elif op == "remove":
            table.remove(ids)
            for i in ids:
                want.pop(i, None)
        else:
            table = table.compacted(drop=set(ids))
            want = {i: v for i, v in want.items() if i not in ids}
            assert table.dead == 0
        check(table, want)


def test_a_reader_keeps_its_rows_while_the_buffer_grows() -> None:
    """A row found before the buffer is replaced still reads its vector afterwards."""
    table = StreamedVectors(DIM, capacity=1)
    table.add([7], np.ones((1, DIM), np.float32))
    _, rows = table.find(np.array([7]))
    before = table.vectors
    table.add(list(range(100, 200)), np.zeros((100, DIM), np.float32))
    assert table.vectors is not before and len(table.vectors) >= 101
    np.testing.assert_array_equal(table.vectors[rows[0]], np.ones(DIM))
    assert table.dead == 0 and len(table) == 101
