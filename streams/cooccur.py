"""Reading the co-occurrence counts from Redis: one script call per batch returns what scoring
needs (model/cooccur.py), plus the live popularity list. The counts are written by the history
append script (streams/history_lua.py), in the same call that appends the clicks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from model.cooccur import CooccurConfig, CountsView, Neighbours, recent_distinct, score_users
from streams.history import unavailable

READ_LUA = """
local P, near_n, pop_n, by_read = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  ARGV[4] == 'read'
local rows, js, got = {}, {}, {}
for k = 5, #ARGV do
  local i = ARGV[k]
  local near = redis.call('ZREVRANGE', P .. i, 0, near_n - 1, 'WITHSCORES')
  rows[#rows + 1] = {i, redis.call('HGET', P .. 'b', i) or '',
                     redis.call('ZSCORE', P .. 'n', i) or '', near}
  for j = 1, by_read and #near or 0, 2 do  -- n of the neighbours: read-time cosine only
    if not got[near[j]] then
      got[near[j]] = true
      js[#js + 1] = near[j]
    end
  end
end
local ns = {}
for lo = 1, #js, 1000 do
  local part = {}
  for j = lo, math.min(lo + 999, #js) do part[#part + 1] = js[j] end
  local scores = redis.call('ZMSCORE', P .. 'n', unpack(part))
  for j = 1, #part do ns[#ns + 1] = scores[j] or '' end
end
local pop = {}
if pop_n > 0 then pop = redis.call('ZREVRANGE', P .. 'n', 0, pop_n - 1) end
return {{redis.call('GET', P .. 'nb') or '', redis.call('GET', P .. 'ts') or ''}, rows, js,
        ns, pop}
"""


def _float(raw: bytes | str) -> float | None:
    return float(raw) if raw not in (b"", "") else None


class CooccurCounts:
    """What one read gives: the counts for the batch's history items, the newest counted data
    time, and the live popular items (most clicked first, counts decayed like the pairs)."""

    def __init__(self, view: CountsView, counts_ts: float | None, popular: list[int]) -> None:
        self.view = view
        self.counts_ts = counts_ts
        self.popular = popular


class CooccurReader:
    """Reads counts through the history store's Redis client (one script call per batch)."""

    def __init__(self, client: Any, cfg: CooccurConfig, prefix: str = "co:") -> None:
        self.cfg = cfg
        self.prefix = prefix
        self._client = client
        self._read = client.register_script(READ_LUA)

    def start(self) -> None:
        with unavailable("script load"):
            self._client.script_load(READ_LUA)

    def read(self, histories: Iterable[Sequence[int]], popular: int = 0) -> CooccurCounts:
        """The counts that scoring `histories` needs and the `popular` most clicked items."""
        items: dict[int, None] = {}
        for history in histories:
            items.update(dict.fromkeys(recent_distinct(history, self.cfg.window)))
        with unavailable("cooccur read"):
            head, rows, js, ns, pop = self._read(
                args=[self.prefix, self.cfg.read, popular, self.cfg.normalize, *items])
        view = CountsView(n_base=_float(head[0]) or 0.0)
        for item, base, n, near in rows:
            if n not in (b"", ""):
                pairs = [(int(near[k]), float(near[k + 1])) for k in range(0, len(near), 2)]
                view.near[int(item)] = Neighbours(_float(base) or 0.0, float(n), pairs)
        view.n = {int(j): float(n) for j, n in zip(js, ns, strict=True) if n not in (b"", "")}
        return CooccurCounts(view, _float(head[1]), [int(i) for i in pop])

    def recall(self, histories: Sequence[Sequence[int]], exclude: Sequence[Iterable[int]],
               top_k: int, counts: CooccurCounts | None = None
               ) -> list[tuple[list[int], list[float]]]:
        """Each user's co-occurrence candidates (model.cooccur.score_users) from one read."""
        counts = counts or self.read(histories)
        return score_users(histories, counts.view, self.cfg, exclude, top_k)
