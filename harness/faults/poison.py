"""Malformed messages for the poison flood: every kind of bad click and item record, labelled.

Each generator yields (label, key, value). Poison clicks use users of POISON_USERS and poison
item records ids of POISON_ITEMS, so a bad record the worker wrongly accepts can be recognised:
a poison item id in any recommendation means a bad vector hijacked the index.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence

POISON_USERS = 800_000_000
POISON_ITEMS = 900_000_000
YEAR_2200 = 7_258_118_400.0
BIG = 300 * 1024
HUGE = 2 * 1024 * 1024

Bad = tuple[str, bytes | None, bytes]


def _raw(text: str) -> bytes:
    return text.encode()


def bad_clicks(rng: random.Random, n: int, item: int, now: float) -> Iterator[Bad]:
    """Cycles through bad click kinds; about 1 in 100 is a 300 KB or 2 MB value."""

    def click(**fields: object) -> bytes:
        return json.dumps(fields).encode()

    for i in range(n):
        user = POISON_USERS + i
        key = str(user).encode()
        ok = {"user_id": user, "item_id": item, "ts": now}
        kinds: list[tuple[str, bytes]] = [
            ("not-json", _raw("{oops " + str(user))),
            ("truncated-json", click(**ok)[:-3]),
            ("empty", b""),
            ("json-array", _raw(f"[{user}, {item}, {now}]")),
            ("json-string", _raw('"click"')),
            ("json-null", _raw("null")),
            ("non-utf8", bytes(rng.getrandbits(8) | 0x80 for _ in range(64))),
            ("non-utf8-in-json", b'{"user_id": ' + key + b', "item_id": 1, "ts": 1, "\xff": 1}'),
            ("user-string", click(user_id="u" + str(user), item_id=item, ts=now)),
            ("item-float", click(user_id=user, item_id=1.5, ts=now)),
            ("ts-string", click(user_id=user, item_id=item, ts="now")),
            ("user-bool", click(user_id=True, item_id=item, ts=now)),
            ("item-null", click(user_id=user, item_id=None, ts=now)),
            ("user-list", click(user_id=[user], item_id=item, ts=now)),
            ("ts-object", click(user_id=user, item_id=item, ts={})),
            ("missing-ts", click(user_id=user, item_id=item)),
            ("missing-all", click()),
            ("unknown-field", click(**ok, extra=1)),
            ("user-negative", click(user_id=-user, item_id=item, ts=now)),
            ("user-zero", click(user_id=0, item_id=item, ts=now)),
            ("item-zero", click(user_id=user, item_id=0, ts=now)),
            ("user-2**63", click(user_id=2**63, item_id=item, ts=now)),
            ("item-2**63", click(user_id=user, item_id=2**63, ts=now)),
            ("user-2**70", click(user_id=2**70, item_id=item, ts=now)),
            ("item-2**70", click(user_id=user, item_id=2**70, ts=now)),
            ("item-1e20", click(user_id=user, item_id=1e20, ts=now)),
            ("ts-nan", _raw(f'{{"user_id": {user}, "item_id": {item}, "ts": NaN}}')),
            ("ts-inf", _raw(f'{{"user_id": {user}, "item_id": {item}, "ts": Infinity}}')),
            ("ts-minus-inf", _raw(f'{{"user_id": {user}, "item_id": {item}, "ts": -Infinity}}')),
            ("ts-1e300", click(user_id=user, item_id=item, ts=1e300)),
            ("ts-year-2200", click(user_id=user, item_id=item, ts=YEAR_2200)),
            ("ts-negative", click(user_id=user, item_id=item, ts=-1.0)),
        ]
        if i % 100 == 50:
            kinds = [("oversized-300KB-bytes", rng.randbytes(BIG)),
                     ("oversized-300KB-json", click(**ok, pad="x" * BIG))]
        if i % 250 == 99:
            kinds = [("oversized-2MB", rng.randbytes(HUGE))]
        label, value = kinds[(i // 100 if len(kinds) < 3 else i) % len(kinds)]
        yield label, key if i % 7 else b"\xff\xfe" + rng.randbytes(6), value


def bad_items(rng: random.Random, n: int, dim: int) -> Iterator[Bad]:
    """Cycles through bad item-embedding kinds (ids, vectors, types, sizes)."""

    def item(**fields: object) -> bytes:
        return json.dumps(fields).encode()

    for i in range(n):
        item_id = POISON_ITEMS + i
        key = str(item_id).encode()
        good = [round(rng.uniform(-1, 1), 4) for _ in range(dim)]
        nan = "[" + ", ".join(["NaN"] + ["0.1"] * (dim - 1)) + "]"
        kinds: list[tuple[str, bytes]] = [
            ("not-json", _raw(f"vector of {item_id}")),
            ("non-utf8", b'{"item_id": ' + key + b', "vector": [\xfe\xff]}'),
            ("vector-3e38", item(item_id=item_id, vector=[3e38] * dim)),
            ("vector-1e39", item(item_id=item_id, vector=[1e39] + [0.1] * (dim - 1))),
            ("vector-zeros", item(item_id=item_id, vector=[0.0] * dim)),
            ("vector-short", item(item_id=item_id, vector=good[:-1])),
            ("vector-long", item(item_id=item_id, vector=good + [0.5])),
            ("vector-empty", item(item_id=item_id, vector=[])),
            ("vector-nan", _raw(f'{{"item_id": {item_id}, "vector": {nan}}}')),
            ("vector-strings", item(item_id=item_id, vector=["0.1"] * dim)),
            ("vector-nested", item(item_id=item_id, vector=[good])),
            ("vector-null", item(item_id=item_id, vector=None)),
            ("deleted-string", item(item_id=item_id, vector=good, deleted="yes")),
            ("item-negative", item(item_id=-item_id, vector=good)),
            ("item-zero", item(item_id=0, vector=good)),
            ("item-2**63", item(item_id=2**63, vector=good)),
            ("item-2**70", item(item_id=2**70, vector=good)),
            ("item-string", item(item_id=str(item_id), vector=good)),
            ("unknown-field", item(item_id=item_id, vector=good, norm=1.0)),
            ("missing-id", item(vector=good)),
        ]
        if i % 100 == 50:
            kinds = [("oversized-300KB-json", item(item_id=item_id, vector=good,
                                                   pad="y" * BIG))]
        label, value = kinds[i % len(kinds)]
        yield label, key, value


def flood(rng: random.Random, clicks: int, items: int, item: int, now: float,
          dim: int) -> list[tuple[str, str, bytes | None, bytes]]:
    """(topic role, label, key, value) of `clicks` bad clicks and `items` bad item records,
    shuffled together."""
    out = [("clicks", *bad) for bad in bad_clicks(rng, clicks, item, now)]
    out += [("items", *bad) for bad in bad_items(rng, items, dim)]
    rng.shuffle(out)
    return out


def valid_items(ids: Sequence[int], vectors: Sequence[Sequence[float]]) -> Iterator[Bad]:
    """Item records the index already holds, unchanged (mixed into the flood)."""
    for item_id, vector in zip(ids, vectors, strict=True):
        yield "valid-item", str(item_id).encode(), item_value(item_id, vector)


def item_value(item_id: int, vector: Sequence[float]) -> bytes:
    return json.dumps({"item_id": int(item_id), "vector": [float(x) for x in vector]}).encode()
