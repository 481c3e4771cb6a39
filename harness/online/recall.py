"""`make online-eval`, frozen variants: the initial model through the worker's own recall core.

`batch` (histories frozen at the cut) and `realtime` (live last clicks) are computed in this
process with `streams.recall.recaller.Recaller`
over `model.serving.InterestModel` of the initial export
and a Milvus collection of its own (`items_frozen`) holding the initial item vectors. Each
served list depends only on (history, seen items) at that click, so the rows are batched by
how many items they exclude: the recaller asks Milvus for top_k + the batch's longest seen row
per interest, which then stays close to each row's own need.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from harness.online.variants import TOP_K, Points
from model.serving import InterestModel
from streams.recall.core import check_model, make_recaller
from streams.recall.recaller import Recaller
from streams.settings import Settings
from streams.stores.index import ItemIndex

FROZEN_COLLECTION = "items_frozen"
MAX_ROWS = 256  # users per recall call
MAX_RESULTS = 1_000_000  # Milvus hits per call at most (rows x interests x per-interest top-k)


class Row(NamedTuple):
    """One served list to compute: the history the model reads, the items never returned."""

    history: np.ndarray
    exclude: np.ndarray
    target: int


@contextmanager
def frozen_recaller(settings: Settings, version_dir: Path,
                    collection: str = FROZEN_COLLECTION) -> Iterator[Recaller]:
    """A Recaller over the initial export and a fresh collection holding its item vectors,
    built with the worker's settings (pruning, per-interest extra, search parameters): the
    MIND channel alone."""
    model = InterestModel.load(version_dir, device=settings.device)
    check_model(model, settings)
    index = ItemIndex(settings.milvus_uri, collection, model.dim, settings.milvus_index,
                      timeout_s=120.0, token=settings.milvus_token)
    index.start()
    try:
        index.drop()
        ids, vectors = model.item_table()
        index.upsert(ids, vectors)
        deadline = time.monotonic() + 120
        while index.count() < len(ids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{collection}: {index.count()} of {len(ids)} vectors")
            time.sleep(0.2)
        mind = make_recaller(settings.model_copy(update={"channels": "mind"}), model, index,
                             TOP_K)
        assert isinstance(mind, Recaller)
        yield mind
    finally:
        index.close()


def point_rows(points: Points, seqs: Mapping[int, np.ndarray], history_len: int,
               ends: np.ndarray, which: np.ndarray | None = None) -> list[Row]:
    """Per evaluated click (or those at `which`): the last `history_len` of the user's first
    `ends[p]` clicks (realtime: every click before it; batch: those before the cut) as the
    history, and every item the user clicked before it as the items never returned."""
    picked = np.arange(len(points)) if which is None else which
    rows = []
    for user, item, before, end in zip(points.user[picked].tolist(),
                                       points.item[picked].tolist(),
                                       points.before[picked].tolist(), ends[picked].tolist(),
                                       strict=True):
        seq = seqs[user]
        rows.append(Row(seq[max(0, end - history_len):end], seq[:before], item))
    return rows


def recall_rows(recaller: Recaller, rows: Sequence[Row], interests: int, desc: str,
                top_k: int = TOP_K) -> tuple[list[np.ndarray], np.ndarray]:
    """Served item lists for `rows` (same order) and which were popular fallbacks [R]."""
    order = sorted(range(len(rows)), key=lambda r: len(rows[r].exclude))
    lists: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(rows)
    fallbacks = np.zeros(len(rows), dtype=bool)
    start = 0
    with tqdm(total=len(rows), desc=desc, unit="click", mininterval=2.0, disable=None) as bar:
        while start < len(order):
            end = start + 1
            while (end < len(order) and end - start < MAX_ROWS and (end - start + 1) * interests
                   * (top_k + len(rows[order[end]].exclude)) <= MAX_RESULTS):
                end += 1
            batch = [rows[r] for r in order[start:end]]
            found = recaller.recall([r.history.tolist() for r in batch], top_k=top_k,
                                    exclude=[r.exclude.tolist() for r in batch])
            for r, cand in zip(order[start:end], found, strict=True):
                lists[r] = np.asarray(cand.item_ids, dtype=np.int64)
                fallbacks[r] = cand.source == "popular"
            bar.update(end - start)
            start = end
    return lists, fallbacks


def ranks_of(lists: Sequence[np.ndarray], rows: Sequence[Row], top_k: int = TOP_K) -> np.ndarray:
    """[P] rank of each row's target in its list (seen items are already excluded), or -1."""
    ranks = np.full(len(rows), -1, dtype=np.int64)
    for r, (items, row) in enumerate(zip(lists, rows, strict=True)):
        found = np.flatnonzero(items[:top_k] == row.target)
        if len(found):
            ranks[r] = int(found[0])
    return ranks


def frozen_variants(recaller: Recaller, points: Points,
                    seqs: Mapping[int, np.ndarray], history_len: int, interests: int
                    ) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Ranks of `realtime` and `batch` and their popular fallbacks. A click whose previous
    click is before the cut has one list for both variants: computed once."""
    live = point_rows(points, seqs, history_len, points.before)
    lists, live_fallbacks = recall_rows(recaller, live, interests, "realtime (frozen model)")
    realtime = ranks_of(lists, live)
    differs = np.flatnonzero(points.before > points.n_past)  # previous click in the stream
    some = point_rows(points, seqs, history_len, points.n_past, differs)
    batch_lists, batch_fallbacks = recall_rows(recaller, some, interests, "batch (frozen)")
    batch = realtime.copy()
    batch[differs] = ranks_of(batch_lists, some)
    same = np.flatnonzero(points.before == points.n_past)
    fallbacks = {"realtime": int(live_fallbacks.sum()),
                 "batch": int(batch_fallbacks.sum() + live_fallbacks[same].sum())}
    return {"realtime": realtime, "batch": batch}, fallbacks


def at_served_ranks(recaller: Recaller, points: Points, seqs: Mapping[int, np.ndarray],
                    state: np.ndarray, realtime: np.ndarray, history_len: int, interests: int
                    ) -> np.ndarray:
    """[P] ranks of the frozen model on the history the worker's served list had seen
    (`state[p]` clicks; see online_served.worker_ranks), every earlier click excluded:
    `continuous` against this isolates what the newer models bring. Where that history is the
    previous click's, the realtime rank is reused."""
    ranks = realtime.copy()
    differs = np.flatnonzero(state != points.before)
    rows = point_rows(points, seqs, history_len, state, differs)
    lists, _ = recall_rows(recaller, rows, interests, "realtime at the served points")
    ranks[differs] = ranks_of(lists, rows)
    return ranks
