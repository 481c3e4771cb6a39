"""`make online-eval`, the lists at the cut: what each worker variant serves a user whose
previous click is before the cut (the first future click of a past user), or whose earlier
stream clicks all went unanswered before it.

No worker record exists for such a click, so the lists are made here, before the replay, by
the worker's own code: `streams.recall.fused.FusedRecaller` over the frozen MIND recaller
(online_recall) and the co-occurrence counts and live popularity in the stack's Redis, which
then hold exactly the past (loaded by the history append script, as the worker counts). The
three variants are taken from these lists as from a record (online_served.variant_lists).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from harness.online.data import Timeline
from harness.online.served import WORKER_VARIANTS, Served, variant_lists
from harness.online.variants import TOP_K
from streams.recall.core import fuse_channels, fusion_config, history_store
from streams.recall.fused import FusedRecaller
from streams.recall.recaller import Recaller
from streams.settings import Settings

BATCH = 128


def cut_lists(settings: Settings, mind: Recaller, timeline: Timeline,
              seqs: Mapping[int, np.ndarray], top_k: int = TOP_K
              ) -> tuple[dict[str, dict[int, np.ndarray]], int]:
    """Variant -> user -> list at the cut, for every future user (one without past clicks
    gets popular items); and how many of them had no MIND list (no history item with a
    vector: `continuous` then serves the popularity channel, as for records)."""
    n_past = Counter(c.user for c in timeline.past)
    users = sorted({c.user for c in timeline.future})
    out: dict[str, dict[int, np.ndarray]] = {v: {} for v in WORKER_VARIANTS}
    store = history_store(settings)
    store.start()
    fallbacks = 0
    fused = fuse_channels(settings, mind, store)  # the worker's channels over `mind`
    if not isinstance(fused, FusedRecaller):  # MIND alone: still one list per channel
        fused = FusedRecaller(mind, ("mind",), fusion_config(settings))
    try:
        for start in range(0, len(users), BATCH):
            group = users[start:start + BATCH]
            ends = [n_past[u] for u in group]
            found = fused.recall(
                [seqs[u][max(0, n - settings.history_len):n].tolist()
                 for u, n in zip(group, ends, strict=True)], top_k,
                exclude=[seqs[u][:n].tolist() for u, n in zip(group, ends, strict=True)])
            for u, cand in zip(group, found, strict=True):
                lists = {k: np.asarray(v, dtype=np.int64)
                         for k, v in cand.channel_lists.items()}
                fallbacks += "mind" not in lists
                served = Served(0.0, cand.model_version,
                                np.asarray(cand.item_ids, dtype=np.int64), lists=lists,
                                counts_ts=cand.counts_ts)
                for v, items in variant_lists(served, top_k).items():
                    if items is not None:
                        out[v][u] = items
    finally:
        fused.close()
        store.close()
    return out, fallbacks
