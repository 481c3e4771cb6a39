"""Readers (sequence files, AmazonBook sample, user/item/ts CSV) and a synthetic generator."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

Sequences = dict[int, list[int]]  # user id -> raw item ids, oldest first


class DataError(ValueError):
    """Raised when a file holds no usable sequence or has an unknown format."""


def _report(path: Path, bad: list[int]) -> None:
    if bad:
        shown = ", ".join(str(n) for n in bad[:5])
        log.warning("%s: skipped %d invalid line(s) (line %s%s)", path, len(bad), shown,
                    ", ..." if len(bad) > 5 else "")


def _finish(path: Path, seqs: Sequences) -> Sequences:
    seqs = {u: s for u, s in seqs.items() if s}
    if not seqs:
        raise DataError(f"{path}: no usable user sequence found")
    return seqs


def read_sequence_file(path: str | Path) -> Sequences:
    """Read `user item item ...` lines (items in time order)."""
    path, bad = Path(path), []
    seqs: Sequences = {}
    with path.open() as fh:
        for no, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                ids = [int(p) for p in parts]
            except ValueError:
                bad.append(no)
                continue
            if len(ids) < 2:
                bad.append(no)
                continue
            seqs.setdefault(ids[0], []).extend(ids[1:])
    _report(path, bad)
    return _finish(path, seqs)


def read_book_train(path: str | Path) -> Sequences:
    """Read the AmazonBook `uid,item_id,order` file; clicks are ordered by `order`."""
    path, rows, bad = Path(path), defaultdict(list), []
    with path.open() as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                uid, item, order = (int(x) for x in line.strip().split(","))
            except ValueError:
                bad.append(no)
                continue
            rows[uid].append((order, item))
    _report(path, bad)
    return _finish(path, {u: [i for _, i in sorted(r)] for u, r in rows.items()})


def read_book_valid(path: str | Path) -> tuple[Sequences, Sequences]:
    """Read PaddleRec `user_id:U target_item:0 hist_item:I ... eval_item:J ...` lines.

    Returns (histories, targets) keyed by user id.
    """
    path, hist, targets, bad = Path(path), {}, {}, []
    with path.open() as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                fields = [tok.split(":", 1) for tok in line.split()]
                kv = [(k, int(v)) for k, v in fields]
                uid = next(v for k, v in kv if k == "user_id")
            except (ValueError, StopIteration):
                bad.append(no)
                continue
            h = [v for k, v in kv if k == "hist_item"]
            t = [v for k, v in kv if k == "eval_item"]
            if not h or not t:
                bad.append(no)
                continue
            hist[uid], targets[uid] = h, t
    _report(path, bad)
    return _finish(path, hist), targets


def read_csv(path: str | Path) -> Sequences:
    """Read `user,item,timestamp` rows (optional header); clicks sorted by timestamp (stable)."""
    path, rows, bad = Path(path), defaultdict(list), []
    with path.open() as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            try:
                user, item, ts = int(parts[0]), int(parts[1]), float(parts[2])
            except (ValueError, IndexError):
                if no > 1:
                    bad.append(no)
                continue
            rows[user].append((ts, no, item))
    _report(path, bad)
    return _finish(path, {u: [i for _, _, i in sorted(r)] for u, r in rows.items()})


def read_events(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`user,item,timestamp` rows (optional header) as (users, items, ts) arrays, in time
    order (stable: rows of one timestamp keep the file's order)."""
    path, rows, bad = Path(path), [], []
    with path.open() as fh:
        for no, line in enumerate(fh, 1):
            parts = [p.strip() for p in line.split(",")]
            try:
                rows.append((int(parts[0]), int(parts[1]), float(parts[2])))
            except (ValueError, IndexError):
                if no > 1 and line.strip():
                    bad.append(no)
    _report(path, bad)
    if not rows:
        raise DataError(f"{path}: no user,item,timestamp row found")
    users, items, ts = (np.array(col) for col in zip(*rows, strict=True))
    order = np.argsort(ts, kind="stable")
    return users[order].astype(np.int64), items[order].astype(np.int64), ts[order]


def read_any(path: str | Path) -> Sequences:
    """Dispatch on the file's shape: AmazonBook dir/train.txt, CSV, or sequence file."""
    path = Path(path)
    if path.is_dir():
        path = path / "train.txt"
    if not path.exists():
        raise DataError(f"{path}: no such file")
    with path.open() as fh:
        first = next((ln for ln in fh if ln.strip()), "")
    if "hist_item:" in first:
        return read_book_valid(path)[0]
    if "," in first:
        cols = first.strip().split(",")
        is_book = len(cols) == 3 and path.name == "train.txt" and "amazon-book" in str(path)
        return read_book_train(path) if is_book else read_csv(path)
    return read_sequence_file(path)


def synthetic(
    num_users: int = 2000,
    num_items: int = 1000,
    num_categories: int = 20,
    min_len: int = 8,
    max_len: int = 30,
    seed: int = 7,
) -> Sequences:
    """Multi-interest synthetic clicks: each user favours 2-4 categories and clicks within them.

    Items are split into equal categories; inside a category item popularity is Zipf-like.
    Each click picks one of the user's favourite categories (sticky: 70% chance to stay
    on the previous one), then an item from it.
    """
    rng = np.random.default_rng(seed)
    per_cat = max(1, num_items // num_categories)
    weights = 1.0 / np.arange(1, per_cat + 1) ** 0.8
    weights /= weights.sum()
    seqs: Sequences = {}
    for user in range(1, num_users + 1):
        favs = rng.choice(num_categories, size=int(rng.integers(2, 5)), replace=False)
        length = int(rng.integers(min_len, max_len + 1))
        cat = int(rng.choice(favs))
        items = []
        for _ in range(length):
            if rng.random() > 0.7:
                cat = int(rng.choice(favs))
            items.append(1 + cat * per_cat + int(rng.choice(per_cat, p=weights)))
        seqs[user] = items
    return seqs
