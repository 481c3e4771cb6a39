"""Reading the co-occurrence channel from Redis: one script call per batch scores every row
inside Redis (the rule of model/cooccur.py, the same float operations in the same order) and
returns each row's top candidates, the live popular items and the newest counted data time.
The counts are written by the history append script (streams/stores/history_lua.py), in the
same call
that appends the clicks. Scoring next to the counts keeps the reply small: a batch of 64 users
reads up to 64 x 10 x `read` neighbours but returns 64 short lists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from model.cooccur import CooccurConfig, fmt, recent_distinct
from streams.stores.history import unavailable
from streams.stores.history_lua import N_OF_LUA

SCORE_LUA = """
local P, nread, pd, half, byread = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), ARGV[5] == 'read'
local topn, popn = tonumber(ARGV[6]), tonumber(ARGV[7])
local nbase = tonumber(redis.call('GET', P .. 'nb') or '0')
local ns = {}
""" + N_OF_LUA + """local near = {}
local function near_of(i)  -- neighbour ids and their values (co, or co / sqrt(n) at read)
  local v = near[i]
  if v == nil then
    local list = redis.call('ZREVRANGE', P .. i, 0, nread - 1, 'WITHSCORES')
    local js, vs = {}, {}
    for t = 1, #list, 2 do
      local j, co = list[t], tonumber(list[t + 1])
      if not byread then
        js[#js + 1], vs[#vs + 1] = j, co
      else
        local nj = n_of(j)
        if nj > 0 then js[#js + 1], vs[#vs + 1] = j, co / math.sqrt(nj) end
      end
    end
    v = {js, vs}
    near[i] = v
  end
  return v
end
local out = {}
for k = 8, #ARGV, 2 do  -- rows: "recent distinct items, newest first", "excluded items"
  local gone = {}
  for x in string.gmatch(ARGV[k + 1], '[^,]+') do gone[x] = true end
  local score, cands = {}, {}
  local pos = 0
  for i in string.gmatch(ARGV[k], '[^,]+') do
    local ni = n_of(i)
    if ni > 0 then
      local shift = 1
      if half > 0 then
        shift = 2 ^ ((tonumber(redis.call('HGET', P .. 'b', i) or '0') - nbase) / half)
      end
      local w = shift / (1 + pd * pos) / math.sqrt(ni)
      local list = near_of(i)
      local js, vs = list[1], list[2]
      for t = 1, #js do
        local j = js[t]
        local old = score[j]
        if old == nil then
          score[j] = w * vs[t]
          cands[#cands + 1] = j
        else
          score[j] = old + w * vs[t]
        end
      end
    end
    pos = pos + 1
  end
  local neg = {}  -- a plain numeric sort (no Lua comparator) finds the top_n-th score
  for _, j in ipairs(cands) do
    if not gone[j] then neg[#neg + 1] = -score[j] end
  end
  local keep = {}
  if #neg > 0 and topn > 0 then
    table.sort(neg)
    local cut = -neg[math.min(topn, #neg)]
    for _, j in ipairs(cands) do
      if score[j] >= cut and not gone[j] then keep[#keep + 1] = {tonumber(j), score[j], j} end
    end
    table.sort(keep, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
  end
  local row = {}
  for t = 1, math.min(topn, #keep) do
    row[#row + 1] = keep[t][3]
    row[#row + 1] = string.format('%.17g', keep[t][2])
  end
  out[#out + 1] = row
end
local pop = {}
if popn > 0 then pop = redis.call('ZREVRANGE', P .. 'n', 0, popn - 1) end
return {redis.call('GET', P .. 'ts') or '', pop, out}
"""


@dataclass(frozen=True)
class CooccurLists:
    """One read: each row's candidates (items, scores), best first; the live popular items
    (most clicked first, counts decayed like the pairs); the newest counted data time."""

    lists: list[tuple[list[int], list[float]]]
    popular: list[int]
    counts_ts: float | None


class CooccurReader:
    """Scores rows against the counts through the history store's Redis client, one script
    call per batch."""

    def __init__(self, client: Any, cfg: CooccurConfig, prefix: str = "co:") -> None:
        self.cfg = cfg
        self.prefix = prefix
        self._client = client
        self._score = client.register_script(SCORE_LUA)

    def start(self) -> None:
        with unavailable("script load"):
            self._client.script_load(SCORE_LUA)

    def read(self, histories: Sequence[Sequence[int]], exclude: Sequence[Iterable[int]],
             top_k: int, popular: int = 0) -> CooccurLists:
        """Each history's top_k co-occurrence candidates without its `exclude` row, and the
        `popular` most clicked items."""
        cfg = self.cfg
        rows: list[str] = []
        for history, drop in zip(histories, exclude, strict=True):
            rows += [",".join(map(str, recent_distinct(history, cfg.window))),
                     ",".join(map(str, drop))]
        args = [self.prefix, cfg.read, fmt(cfg.pos_decay), fmt(cfg.half_life_s or 0),
                cfg.normalize, top_k, popular, *rows]
        with unavailable("cooccur read"):
            counts_ts, pop, found = self._score(args=args)
        lists = [([int(row[t]) for t in range(0, len(row), 2)],
                  [float(row[t]) for t in range(1, len(row), 2)]) for row in found]
        return CooccurLists(lists, [int(i) for i in pop],
                            float(counts_ts) if counts_ts not in (b"", "") else None)
