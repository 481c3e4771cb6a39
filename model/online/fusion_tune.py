"""Choose the fusion rule on offline simulation dumps (`python -m model.online.fusion_tune`).

A dump (`python -m model.online.sim --dump`) holds, for every scored click, the list each
channel served just before it: MIND (`continuous`: the trainer on), co-occurrence (`cooccur`,
raw), transitions (`next`, raw) and live popularity (`most_popular`). This scores weighted
reciprocal-rank fusion (model/fusion.py) for a grid of weights and k0 on the same lists,
vectorised: HR@50 of the
fused list on the first half of each stream's future (where settings are chosen), the second
half (the check) and the whole, beside the channels alone and ItemCF (co-occurrence filled
with popularity). The chosen point is the best mean of the per-stream ratios to the better
of ItemCF and MIND on the first halves, among the points that find at least ItemCF's share of
new-item clicks on every first half (the issue's new-item target). It also scores a blender
learned online: every 1,000 scored clicks it switches to the grid point with the most hits so
far (follow the leader).
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.cli import HelpFormatter
from model.cooccur import filled
from model.fusion import CHANNELS, FusionConfig
from model.online.dump import load

SOURCES = {"mind": "continuous", "cooccur": "cooccur", "next": "next",
           "popular": "most_popular"}


@dataclass
class Lists:
    """One stream's channel lists [P, L] (-1 padded), the clicked items [P] and which half."""

    ids: dict[str, np.ndarray]
    target: np.ndarray
    first: np.ndarray  # [P] bool: first half of the scored clicks
    new: np.ndarray  # [P] bool: the clicked item was new at the cut
    cross: dict[tuple[str, str], np.ndarray]  # (a, b) -> [P, L] rank in b of a's entries, -1

    @classmethod
    def from_dump(cls, path: Path, length: int) -> Lists:
        meta, lists = load(path)
        ids = {c: lists[SOURCES[c]][:, :length] for c in CHANNELS}
        cross = {}
        for a, b in itertools.permutations(CHANNELS, 2):
            out = np.full(ids[a].shape, -1, dtype=np.int32)
            for lo in range(0, len(out), 2000):
                eq = ids[a][lo:lo + 2000, :, None] == ids[b][lo:lo + 2000, None, :]
                eq &= ids[a][lo:lo + 2000, :, None] >= 0
                out[lo:lo + 2000] = np.where(eq.any(axis=2), eq.argmax(axis=2), -1)
            cross[a, b] = out
        n = len(meta["item"])
        return cls(ids, meta["item"], np.arange(n) < n // 2, meta["new"].astype(bool), cross)

    def hits(self, cfg: FusionConfig, top: int = 50) -> np.ndarray:
        """[P] bool: the clicked item is in the fused top `top`."""
        score, first, items = [], [], []
        for k, a in enumerate(CHANNELS):
            ranks = np.arange(self.ids[a].shape[1])[None, :]
            s = np.where(self.ids[a] >= 0, cfg.weight(a) / (cfg.k0 + ranks + 1), 0.0)
            dup = np.zeros(self.ids[a].shape, dtype=bool)
            for b in CHANNELS:
                if b == a:
                    continue
                r = self.cross[a, b]
                s = s + np.where(r >= 0, cfg.weight(b) / (cfg.k0 + r + 1), 0.0)
                if CHANNELS.index(b) < k:
                    dup |= r >= 0  # counted with the earlier channel
            score.append(s)
            first.append((self.ids[a] >= 0) & ~dup & (s > 0))
            items.append(self.ids[a])
        s, keep, ids = (np.concatenate(x, axis=1) for x in (score, first, items))
        is_target = (ids == self.target[:, None]) & keep
        t_score = np.where(is_target, s, -1.0).max(axis=1)  # [P], -1: in no list
        better = keep & ((s > t_score[:, None]) |
                         ((s == t_score[:, None]) & (ids < self.target[:, None])))
        return (t_score > 0) & (better.sum(axis=1) < top)

    def alone(self, channel: str, top: int = 50) -> np.ndarray:
        return (self.ids[channel][:, :top] == self.target[:, None]).any(axis=1)


def itemcf(lists: Lists, top: int = 50) -> np.ndarray:
    """Co-occurrence filled with popularity (the ItemCF a team deploys first)."""
    co, pop = lists.ids["cooccur"], lists.ids["popular"]
    return np.array([lists.target[p] in filled(co[p][co[p] >= 0], pop[p][pop[p] >= 0], top)
                     for p in range(len(co))], dtype=bool)


def halves(hit: np.ndarray, lists: Lists) -> dict[str, float]:
    """HR@50 on each half and the whole, and on clicks of items new at the cut (`new`; on the
    first half: `new_first`)."""
    first = lists.first
    return {"first": float(hit[first].mean()), "second": float(hit[~first].mean()),
            "whole": float(hit.mean()), "new": float(hit[lists.new].mean()),
            "new_first": float(hit[first & lists.new].mean())}


def choose(grid: list[dict[str, Any]]) -> dict[str, Any]:
    """The rule: the best mean first-half ratio among the points whose new-item HR@50 on the
    first halves is at least ItemCF's on every stream (all points when none is)."""
    eligible = [r for r in grid if r["new_items_at_least_itemcf_first"]] or grid
    return max(eligible, key=lambda r: r["mean_ratio_first"])


def follow_the_leader(hits: np.ndarray, start: int, every: int = 1000) -> np.ndarray:
    """[P] hits of a rule re-chosen every `every` scored clicks: the grid point (row of `hits`,
    [G, P]) with the most hits so far (past clicks only), `start` before any."""
    out = np.zeros(hits.shape[1], dtype=bool)
    for lo in range(0, hits.shape[1], every):
        pick = start if lo == 0 else int(hits[:, :lo].sum(axis=1).argmax())
        out[lo:lo + every] = hits[pick, lo:lo + every]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.online.fusion_tune", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("dumps", nargs="+", help="dump .npz files, one per stream")
    p.add_argument("--length", type=int, default=100, help="list length per channel")
    p.add_argument("--out", default=None, help="write the grid as JSON here")
    args = p.parse_args(argv)
    streams = {Path(d).stem: Lists.from_dump(Path(d), args.length) for d in args.dumps}
    base = {}
    for name, lists in streams.items():
        base[name] = {"mind": halves(lists.alone("mind"), lists),
                      "itemcf": halves(itemcf(lists), lists),
                      "cooccur": halves(lists.alone("cooccur"), lists),
                      "next": halves(lists.alone("next"), lists)}
        print(name, json.dumps(base[name]))
    grid: list[dict[str, Any]] = []
    configs: list[FusionConfig] = []
    hits: dict[str, list[np.ndarray]] = {name: [] for name in streams}
    for w_co, w_next, w_pop, k0 in itertools.product(
            (0.75, 1.0, 1.5, 2.0, 3.0), (0.0, 0.5, 1.0, 1.5), (0.25, 0.5), (20.0, 60.0, 100.0)):
        cfg = FusionConfig(mind=1.0, cooccur=w_co, next=w_next, popular=w_pop, k0=k0)
        row: dict[str, Any] = {"cooccur": w_co, "next": w_next, "popular": w_pop, "k0": k0}
        ratios, new_ok = [], []
        configs.append(cfg)
        for name, lists in streams.items():
            hits[name].append(lists.hits(cfg))
            got = halves(hits[name][-1], lists)
            ref = {h: max(base[name]["mind"][h], base[name]["itemcf"][h]) for h in got}
            row[name] = {**got, **{f"ratio_{h}": got[h] / ref[h] for h in got}}
            ratios.append(got["first"] / ref["first"])
            new_ok.append(got["new_first"] >= base[name]["itemcf"]["new_first"])
        row["mean_ratio_first"] = float(np.mean(ratios))
        row["new_items_at_least_itemcf_first"] = all(new_ok)
        grid.append(row)
    online = {}
    for name, lists in streams.items():  # a blender learned online: the grid's leader so far
        got = halves(follow_the_leader(np.stack(hits[name]), configs.index(FusionConfig())),
                     lists)
        ref = {h: max(base[name]["mind"][h], base[name]["itemcf"][h]) for h in got}
        online[name] = {**got, **{f"ratio_{h}": got[h] / ref[h] for h in got}}
        print(name, "online (follow the leader)", json.dumps(online[name]))
    grid.sort(key=lambda r: -r["mean_ratio_first"])
    for row in grid[:10]:
        print(json.dumps(row))
    chosen = choose(grid)
    print("CHOSEN " + json.dumps(chosen))
    if args.out:
        Path(args.out).write_text(json.dumps({"baselines": base, "chosen": chosen, "grid": grid,
                                              "online_follow_the_leader": online}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
