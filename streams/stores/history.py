"""Per-user click histories and seen items in Redis, appended one micro-batch per round trip
and safe to replay (the stored format: the header of streams/stores/lua/append.lua)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import redis
from pydantic import SecretStr
from redis.cluster import RedisCluster, key_slot

from model.cooccur import CooccurConfig
from streams.errors import InvalidRequest, ServiceUnavailable
from streams.stores.scripts import ALL, DEFER, FIRST_CLICK_ARG, lua_script


class ClickAt(NamedTuple):
    """A valid click with where it came from in Kafka: partition, offset and the log's epoch
    (the topic id; "" where the broker has none) make the replay guard."""

    user_id: int
    item_id: int
    ts: float
    partition: int
    offset: int
    epoch: str = ""


def parse_history(raw: bytes | str | None) -> list[int]:
    """Item ids, oldest first, from a stored `h` field."""
    if not raw:
        return []
    text = raw.decode() if isinstance(raw, bytes) else raw
    return [int(entry.rsplit(" ", 1)[1]) for entry in text.split(";")]


def parse_seen(raw: bytes | str | None, most: int | None = None) -> list[int]:
    """Item ids, least recently clicked first, from a stored `s` field (the last `most`)."""
    if not raw:
        return []
    ids = np.fromstring(raw, dtype=np.int64, sep=" ")  # [N], 5x faster than int() on each id
    return (ids if most is None else ids[-most:]).tolist()


class UserState(NamedTuple):
    """A user's history (oldest first) and seen items (least recently clicked first)."""

    history: list[int]
    seen: list[int]

    def excluded(self) -> list[int]:
        """The items never to recommend: every seen item, then history items not among them
        (a store keeping no seen items, or one keeping fewer than the history)."""
        if not self.seen:
            return list(self.history)
        known = set(self.seen)
        return [*self.seen, *(i for i in self.history if i not in known)]


# a cluster failing over or resharding: retried like a lost connection
CLUSTER_OUTAGES = (redis.exceptions.ClusterError, redis.exceptions.SlotNotCoveredError,
                   redis.exceptions.TryAgainError)


@contextmanager
def unavailable(what: str) -> Iterator[None]:
    """Outages become ServiceUnavailable (retried); refused credentials InvalidRequest."""
    try:
        yield
    except (redis.AuthenticationError, redis.exceptions.AuthorizationError) as exc:
        raise InvalidRequest(f"redis refused {what}: {exc} (check RECALL_REDIS_*)") from exc
    except (redis.ConnectionError, redis.TimeoutError, *CLUSTER_OUTAGES) as exc:
        raise ServiceUnavailable(f"redis {what} failed: {type(exc).__name__}: {exc}") from exc


def redis_client(url: str, username: str | None = None, password: SecretStr | None = None,
                 cluster: bool = False, timeout_s: float = 5.0) -> Any:
    """A Redis (or Redis Cluster) client; credentials inside `url` win over these."""
    kind = RedisCluster if cluster else redis.Redis
    return kind.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, username=username,
        password=password.get_secret_value() if password is not None else None)


class _Call:
    """The keys and arguments of one append script call (keys of one hash slot on a cluster)."""

    def __init__(self, header: list[Any]) -> None:
        self.users: dict[int, int] = {}  # user -> its 1-based index in KEYS
        self.args: list[Any] = list(header)

    def add(self, click: ClickAt) -> None:
        user, item, ts, partition, offset, epoch = click
        k = self.users.setdefault(user, len(self.users) + 1)
        self.args += [k, item, repr(float(ts)), partition, offset, epoch]

    def states(self, rows: list[Any], seen_max: int) -> dict[int, UserState]:
        """The script's rows as user -> state (seen_max 0: seen lists left empty)."""
        users = list(self.users)
        return {users[int(row[0]) - 1]: UserState([int(x) for x in row[2:]],
                                                  parse_seen(row[1], seen_max) if seen_max else [])
                for row in rows}


class HistoryStore:
    """Sync Redis client for histories (run it in an executor from async code).

    With `cluster` (Redis Cluster, `url` naming any node) every key is one user's hash, and
    each script call touches the keys of one hash slot only: a batch is grouped by slot, and
    the calls of each node go in one pipeline (one round trip per node).

    `seen_max`: most distinct items kept per user as its seen items, in the same hash and the
    same script call as the history (0: none kept, none read). `ttl_s`: a user's hash (history,
    seen items, replay guard) expires this long after its last applied click (None: never).
    `cooccur`: also count item co-occurrences under `co_prefix` in the same call (None: none;
    not on a cluster, where those keys would cross slots); `watermark_key`: count a click only
    once the data time in that key reaches it (evaluation; None: at once); `defer_counts`
    (without a watermark): the append only queues each applied click, under the same replay
    guard, and `count_due` counts every queued click (the worker calls it beside its recall).
    """

    def __init__(self, url: str, *, history_len: int = 10, prefix: str = "hist:",
                 ttl_s: float | None = None, seen_max: int = 0, timeout_s: float = 5.0,
                 username: str | None = None, password: SecretStr | None = None,
                 cluster: bool = False, cooccur: CooccurConfig | None = None,
                 co_prefix: str = "co:", watermark_key: str | None = None,
                 defer_counts: bool = False) -> None:
        if cooccur is not None and cluster:
            raise ValueError("co-occurrence counts need a single Redis, not a cluster")
        if cooccur is not None and cooccur.window > history_len:
            raise ValueError(f"co-occurrence window {cooccur.window} is longer than the "
                             f"history ({history_len})")
        self.url = url
        self.history_len = history_len
        self.prefix = prefix
        self.ttl_ms = int(ttl_s * 1000) if ttl_s else 0
        self.seen_max = seen_max
        self.cluster = cluster
        self.cooccur = cooccur
        self.co_prefix = co_prefix
        co = cooccur or CooccurConfig()
        self.defer_counts = defer_counts and cooccur is not None and not watermark_key
        queue = DEFER if self.defer_counts else watermark_key or ""
        self._header = [history_len, self.ttl_ms, seen_max, int(cooccur is not None),
                        co.window, co.cap, co.half_life_s or 0, co_prefix, queue,
                        co.normalize, co.next_window, co.next_cap]
        assert len(self._header) == FIRST_CLICK_ARG - 1
        self._due = [ALL if x == DEFER else x for x in self._header]  # count_due's header
        self._client = redis_client(url, username, password, cluster, timeout_s)
        self._append = self._client.register_script(lua_script("append.lua"))

    @property
    def client(self) -> Any:
        """The Redis client (shared with streams.recall.cooccur_reader.CooccurReader)."""
        return self._client

    def key(self, user_id: int) -> str:
        return f"{self.prefix}{user_id}"

    def start(self) -> None:
        """Ping Redis and load the append script once (EVALSHA afterwards)."""
        with unavailable("ping"):
            self._client.ping()
            self._client.script_load(lua_script("append.lua"))

    def close(self) -> None:
        self._client.close()

    def ping(self) -> None:
        """One round trip to Redis (readiness); raises ServiceUnavailable when it is away."""
        with unavailable("ping"):
            self._client.ping()

    def slot(self, user_id: int) -> int:
        """The Redis Cluster hash slot of a user's key."""
        return key_slot(self.key(user_id).encode())

    def calls(self, clicks: Iterable[ClickAt]) -> dict[int, _Call]:
        """The script calls for a batch: one per hash slot on a cluster, else one (slot 0)."""
        calls: dict[int, _Call] = {}
        for click in clicks:
            click = ClickAt(*click)
            slot = self.slot(click.user_id) if self.cluster else 0
            call = calls.setdefault(slot, _Call(self._header))
            call.add(click)
        return calls

    def append(self, clicks: Iterable[ClickAt]) -> dict[int, list[int]]:
        """Apply a batch of clicks (one EVALSHA per slot); return each touched user's history."""
        return {user: state.history for user, state in self._apply(clicks, 0).items()}

    def append_seen(self, clicks: Iterable[ClickAt]) -> dict[int, UserState]:
        """`append`, returning each touched user's history and seen items (the same call)."""
        return self._apply(clicks, self.seen_max)

    def _apply(self, clicks: Iterable[ClickAt], seen_max: int) -> dict[int, UserState]:
        calls = self.calls(clicks)
        out: dict[int, UserState] = {}
        with unavailable("append"):
            if self.cluster:
                results = self._append_by_node(calls)
            else:
                results = {slot: self._run(call) for slot, call in calls.items()}
        for slot, rows in results.items():
            out.update(calls[slot].states(rows, seen_max))
        return out

    def count_due(self) -> None:
        """Count the queued clicks that are due, with no click to append: every one with
        `defer_counts`, else those the watermark has reached (which the append script also
        counts on every call)."""
        if self.cooccur is not None:
            with unavailable("append"):
                self._run(_Call(self._due))

    def _run(self, call: _Call) -> list[Any]:
        return self._append(keys=[self.key(u) for u in call.users], args=call.args)

    def _append_by_node(self, calls: dict[int, _Call]) -> dict[int, list[Any]]:
        """One pipeline of EVALSHAs per node. A call refused there (slot moved, script not
        loaded) is run again through the cluster client, which follows redirects and loads the
        script: safe, as the offset guard applies a click once."""
        assert isinstance(self._client, RedisCluster)
        by_node: dict[str, list[int]] = {}
        nodes = {}
        for slot in calls:
            node = self._client.nodes_manager.get_node_from_slot(slot)
            by_node.setdefault(node.name, []).append(slot)
            nodes[node.name] = node
        results: dict[int, list[Any]] = {}
        for name, slots in by_node.items():
            pipe = nodes[name].redis_connection.pipeline(transaction=False)
            for slot in slots:
                keys = [self.key(u) for u in calls[slot].users]
                pipe.evalsha(self._append.sha, len(keys), *keys, *calls[slot].args)
            for slot, rows in zip(slots, pipe.execute(raise_on_error=False), strict=True):
                if isinstance(rows, redis.ConnectionError | redis.TimeoutError):
                    raise rows
                results[slot] = self._run(calls[slot]) if isinstance(rows, Exception) else rows
        return results

    def get(self, user_ids: Sequence[int]) -> dict[int, list[int]]:
        """Histories (oldest first, empty when unknown) of many users in one pipeline."""
        raws = self._field(user_ids, "h")
        return {u: parse_history(raw) for u, raw in zip(user_ids, raws, strict=True)}

    def seen(self, user_ids: Sequence[int]) -> dict[int, list[int]]:
        """Seen items (least recently clicked first, empty when unknown) of many users in one
        pipeline; a store keeping none (seen_max 0) answers empty lists without a round trip."""
        if not self.seen_max:
            return {u: [] for u in user_ids}
        raws = self._field(user_ids, "s")
        return {u: parse_seen(raw, self.seen_max) for u, raw in zip(user_ids, raws, strict=True)}

    def _field(self, user_ids: Sequence[int], name: str) -> list[Any]:
        """One field of many users' hashes, in one pipeline."""
        with unavailable("get"):
            pipe = self._client.pipeline(transaction=False)
            for u in user_ids:
                pipe.hget(self.key(u), name)
            return list(pipe.execute())

    def clear_users(self, user_ids: Sequence[int]) -> None:
        """Forget the histories and offsets of some users."""
        if user_ids:
            with unavailable("clear"):
                self._client.delete(*(self.key(u) for u in user_ids))

    def flush(self) -> None:
        """Delete every key under this store's prefixes (tests and resets)."""
        prefixes = [self.prefix, *([self.co_prefix] if self.cooccur is not None else [])]
        with unavailable("flush"):
            keys = [k for p in prefixes for k in self._client.scan_iter(match=f"{p}*", count=1000)]
            for start in range(0, len(keys), 1000):  # a cluster client splits these by slot
                self._client.unlink(*keys[start:start + 1000])
