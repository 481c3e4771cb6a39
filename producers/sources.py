"""Click sources for replay: readers of three dataset formats, a seeded interleave, a generator."""

from __future__ import annotations

import random
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import NamedTuple

import numpy as np

from streams.errors import BadRequest

FORMATS = ("auto", "sequences", "amazonbook", "csv")
Report = Callable[[int, str], None]
UserClicks = tuple[int, list[int]]  # (user id, item ids in time order)


class SourceClick(NamedTuple):
    """One click read from a source; `ts` is the dataset's timestamp where it has one."""

    user_id: int
    item_id: int
    ts: float | None = None


class LineReporter:
    """Reports a bad input line as `path:line: skipped: reason` on stderr and counts them."""

    def __init__(self, path: str | Path) -> None:
        self.path, self.count = path, 0

    def __call__(self, lineno: int, reason: str) -> None:
        self.count += 1
        print(f"{self.path}:{lineno}: skipped: {reason}", file=sys.stderr)


def _ids(fields: Sequence[str], lineno: int, report: Report) -> list[int] | None:
    try:
        values = [int(f) for f in fields]
    except ValueError:
        report(lineno, f"not integer ids: {' '.join(fields)[:80]!r}")
        return None
    if any(v <= 0 for v in values):
        report(lineno, "ids must be positive")
        return None
    return values


def read_sequences(path: str | Path, report: Report | None = None) -> Iterator[UserClicks]:
    """`user item item ...` lines (amazon-*.txt) -> (user, items in time order), lazily."""
    report = report or LineReporter(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2:
                report(lineno, "a user without items")
                continue
            ids = _ids(fields, lineno, report)
            if ids is not None:
                yield ids[0], ids[1:]


def read_amazonbook(path: str | Path, report: Report | None = None) -> Iterator[UserClicks]:
    """ComiRec `uid,item_id,order` rows -> (user + 1, items by order), users in first-seen order.

    AmazonBook user ids start at 0 while a Click needs a positive id, so every uid is shifted by 1.
    """
    report = report or LineReporter(path)
    rows: dict[int, list[tuple[int, int]]] = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.strip().split(",")
            if fields == [""]:
                continue
            if len(fields) != 3 or not all(x.strip().lstrip("-").isdigit() for x in fields):
                report(lineno, f"expected uid,item_id,order: {line.strip()[:80]!r}")
                continue
            uid, item, order = (int(x) for x in fields)
            if uid < 0 or item <= 0:
                report(lineno, "uid must be >= 0 and item_id positive")
                continue
            rows[uid + 1].append((order, item))
    for user, clicks in rows.items():
        yield user, [item for _, item in sorted(clicks)]


def read_csv(path: str | Path, report: Report | None = None) -> Iterator[SourceClick]:
    """`user,item,timestamp` rows (optional header) -> clicks in file order, with timestamps."""
    report = report or LineReporter(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = [x.strip() for x in line.strip().split(",")]
            if fields == [""]:
                continue
            if len(fields) != 3:
                report(lineno, f"expected user,item,timestamp: {line.strip()[:80]!r}")
                continue
            ids = _ids(fields[:2], lineno, lambda *_: None)
            try:
                ts = float(fields[2])
            except ValueError:
                ts = None
            if ids is None or ts is None or not ts >= 0:
                if lineno > 1 or ids is not None:  # a non-numeric first row is a header
                    report(lineno, f"bad user,item,timestamp row: {line.strip()[:80]!r}")
                continue
            yield SourceClick(ids[0], ids[1], ts)


def interleave(sequences: Iterable[UserClicks], active: int = 64,
               seed: int = 0) -> Iterator[SourceClick]:
    """Merge per-user sequences into one stream, keeping each user's order.

    A window of `active` users clicks at the same time: each step a seeded random pick among them
    emits that user's next click; a user who is done makes room for the next user of the file.
    `active=1` replays one user after another.
    """
    rng = random.Random(seed)
    users = iter(sequences)
    pool: list[tuple[int, Iterator[int]]] = [(u, iter(s)) for u, s in islice(users, max(active, 1))]
    while pool:
        i = rng.randrange(len(pool))
        user, items = pool[i]
        item = next(items, None)
        if item is not None:
            yield SourceClick(user, item)
            continue
        nxt = next(users, None)
        if nxt is not None:
            pool[i] = (nxt[0], iter(nxt[1]))
        else:
            pool[i] = pool[-1]
            pool.pop()


def first_users(clicks: Iterable[SourceClick], users: int) -> Iterator[SourceClick]:
    """Only the clicks of the first `users` distinct users seen."""
    seen: set[int] = set()
    for c in clicks:
        if c.user_id not in seen:
            if len(seen) >= users:
                continue
            seen.add(c.user_id)
        yield c


def detect_format(path: str | Path) -> str:
    """Guess a format: no commas -> sequences, `.csv` -> csv, other comma files -> amazonbook."""
    with open(path, encoding="utf-8") as f:
        first = next((line for line in f if line.strip()), "")
    if "," not in first:
        return "sequences"
    return "csv" if str(path).endswith(".csv") else "amazonbook"


def iter_clicks(path: str | Path, fmt: str = "auto", *, users: int | None = None,
                active: int = 64, seed: int = 0, report: Report | None = None
                ) -> Iterator[SourceClick]:
    """All clicks of a dataset file in replay order; see `interleave` for per-user formats."""
    if not Path(path).is_file():
        raise BadRequest(f"no such file: {path}")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "csv":
        rows = read_csv(path, report)
        return first_users(rows, users) if users is not None else rows
    if fmt not in ("sequences", "amazonbook"):
        raise BadRequest(f"unknown format {fmt!r}, expected one of {FORMATS}")
    reader = read_sequences if fmt == "sequences" else read_amazonbook
    seqs: Iterable[UserClicks] = reader(path, report)
    if users is not None:
        seqs = islice(seqs, users)
    return interleave(seqs, active=active, seed=seed)


def synthetic_clicks(items: Sequence[int] | np.ndarray, users: int = 100, seed: int = 0,
                     limit: int | None = None, personal: int = 20) -> Iterator[SourceClick]:
    """Seeded endless clicks of users 1..`users` on the given catalog (stops after `limit`).

    Item popularity is Zipf-like; each user keeps returning to a small personal set of items
    (70% of clicks) so histories carry interests a model can pick up.
    """
    catalog = np.asarray(items, dtype=np.int64)
    if catalog.size == 0 or users < 1:
        raise BadRequest("synthetic clicks need at least one item and one user")
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, catalog.size + 1) ** 0.8
    popularity /= popularity.sum()
    order = rng.permutation(catalog.size)  # which item gets which popularity rank
    favourites = order[rng.choice(catalog.size, size=(users, personal), p=popularity)]
    count = 0
    while limit is None or count < limit:
        n = 1024 if limit is None else min(1024, limit - count)
        who = rng.integers(0, users, size=n)
        own = rng.random(n) < 0.7
        pick = np.where(own, favourites[who, rng.integers(0, personal, size=n)],
                        order[rng.choice(catalog.size, size=n, p=popularity)])
        for u, i in zip(who.tolist(), catalog[pick].tolist(), strict=True):
            yield SourceClick(u + 1, i)
        count += n
