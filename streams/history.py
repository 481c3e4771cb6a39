"""Per-user click histories in Redis, appended one micro-batch per round trip and safe to replay."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import redis
from pydantic import SecretStr
from redis.cluster import RedisCluster, key_slot

from streams.errors import InvalidRequest, ServiceUnavailable

# One hash per user at `{prefix}{user_id}`:
#   h      -> "ts seq item;ts seq item;..." the last `history_len` clicks, oldest first by
#             (ts, seq); ts and item are kept as the exact strings Python sent (no float rounding)
#   n      -> arrival counter of this user (seq of the last applied click, breaks ts ties)
#   o<p>   -> "offset epoch": last applied Kafka offset of partition p for this user and the
#             epoch (topic id) of the log it came from: the replay guard. A click of another
#             epoch (the topic was recreated: a broker reset) starts the guard afresh.
# ARGV: history_len, ttl_ms (0 = none), then per click: key index, item, ts, partition, offset,
#       epoch.
# Returns, per touched key in KEYS order: {key index, item, item, ...} oldest first.
APPEND_LUA = """
local hlen = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local st = {}
for i = 3, #ARGV, 6 do
  local k = tonumber(ARGV[i])
  local s = st[k]
  if s == nil then
    local f = redis.call('HGETALL', KEYS[k])
    s = {h = {}, n = 0, off = {}, raw = {}, dirty = false}
    for j = 1, #f, 2 do
      local name, v = f[j], f[j + 1]
      if name == 'h' then
        for ts, seq, item in string.gmatch(v, '([^ ;]+) ([^ ;]+) ([^ ;]+)') do
          s.h[#s.h + 1] = {tonumber(ts), tonumber(seq), item, ts}
        end
      elseif name == 'n' then
        s.n = tonumber(v)
      else
        local off, epoch = string.match(v, '^(%S+) ?(.*)$')
        s.off[string.sub(name, 2)] = {tonumber(off), epoch}
      end
    end
    st[k] = s
  end
  local p = ARGV[i + 3]
  local off = tonumber(ARGV[i + 4])
  local epoch = ARGV[i + 5]
  local guard = s.off[p]
  local last = -1
  if guard ~= nil and guard[2] == epoch then last = guard[1] end
  if off > last then
    s.off[p] = {off, epoch}
    s.raw[p] = ARGV[i + 4] .. ' ' .. epoch
    s.dirty = true
    s.n = s.n + 1
    local ts = tonumber(ARGV[i + 2])
    local h = s.h
    local pos = #h + 1
    while pos > 1 and h[pos - 1][1] > ts do pos = pos - 1 end
    table.insert(h, pos, {ts, s.n, ARGV[i + 1], ARGV[i + 2]})
    while #h > hlen do table.remove(h, 1) end
  end
end
local out = {}
for k = 1, #KEYS do
  local s = st[k]
  local row = {k}
  local parts = {}
  for j, e in ipairs(s.h) do
    row[#row + 1] = e[3]
    parts[j] = e[4] .. ' ' .. string.format('%d', e[2]) .. ' ' .. e[3]
  end
  if s.dirty then
    local args = {'h', table.concat(parts, ';'), 'n', string.format('%d', s.n)}
    for p, raw in pairs(s.raw) do
      args[#args + 1] = 'o' .. p
      args[#args + 1] = raw
    end
    redis.call('HSET', KEYS[k], unpack(args))
    if ttl > 0 then redis.call('PEXPIRE', KEYS[k], ttl) end
  end
  out[k] = row
end
return out
"""


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


# a cluster failing over or resharding: retried like a lost connection
CLUSTER_OUTAGES = (redis.exceptions.ClusterError, redis.exceptions.SlotNotCoveredError,
                   redis.exceptions.TryAgainError)


@contextmanager
def _unavailable(what: str) -> Iterator[None]:
    """Outages become ServiceUnavailable (retried); refused credentials InvalidRequest."""
    try:
        yield
    except (redis.AuthenticationError, redis.exceptions.AuthorizationError) as exc:
        raise InvalidRequest(f"redis refused {what}: {exc} (check RECALL_REDIS_*)") from exc
    except (redis.ConnectionError, redis.TimeoutError, *CLUSTER_OUTAGES) as exc:
        raise ServiceUnavailable(f"redis {what} failed: {exc!r}") from exc


class _Call:
    """The keys and arguments of one append script call (keys of one hash slot on a cluster)."""

    def __init__(self, history_len: int, ttl_ms: int) -> None:
        self.users: dict[int, int] = {}  # user -> its 1-based index in KEYS
        self.args: list[Any] = [history_len, ttl_ms]

    def add(self, click: ClickAt) -> None:
        user, item, ts, partition, offset, epoch = click
        k = self.users.setdefault(user, len(self.users) + 1)
        self.args += [k, item, repr(float(ts)), partition, offset, epoch]

    def histories(self, rows: list[Any]) -> dict[int, list[int]]:
        users = list(self.users)
        return {users[int(row[0]) - 1]: [int(x) for x in row[1:]] for row in rows}


class HistoryStore:
    """Sync Redis client for histories (run it in an executor from async code).

    With `cluster` (Redis Cluster, `url` naming any node) every key is one user's hash, and
    each script call touches the keys of one hash slot only: a batch is grouped by slot, and
    the calls of each node go in one pipeline (one round trip per node).
    """

    def __init__(self, url: str, *, history_len: int = 10, prefix: str = "hist:",
                 ttl_s: float | None = None, timeout_s: float = 5.0,
                 username: str | None = None, password: SecretStr | None = None,
                 cluster: bool = False) -> None:
        self.url = url
        self.history_len = history_len
        self.prefix = prefix
        self.ttl_ms = int(ttl_s * 1000) if ttl_s else 0
        self.cluster = cluster
        kind = RedisCluster if cluster else redis.Redis
        self._client = kind.from_url(  # credentials inside `url` win over these
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, username=username,
            password=password.get_secret_value() if password is not None else None,
        )
        self._append = self._client.register_script(APPEND_LUA)

    def key(self, user_id: int) -> str:
        return f"{self.prefix}{user_id}"

    def start(self) -> None:
        """Ping Redis and load the append script once (EVALSHA afterwards)."""
        with _unavailable("ping"):
            self._client.ping()
            self._client.script_load(APPEND_LUA)

    def close(self) -> None:
        self._client.close()

    def ping(self) -> None:
        """One round trip to Redis (readiness); raises ServiceUnavailable when it is away."""
        with _unavailable("ping"):
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
            calls.setdefault(slot, _Call(self.history_len, self.ttl_ms)).add(click)
        return calls

    def append(self, clicks: Iterable[ClickAt]) -> dict[int, list[int]]:
        """Apply a batch of clicks (one EVALSHA per slot); return each touched user's history."""
        calls = self.calls(clicks)
        out: dict[int, list[int]] = {}
        with _unavailable("append"):
            if self.cluster:
                results = self._append_by_node(calls)
            else:
                results = {slot: self._run(call) for slot, call in calls.items()}
        for slot, rows in results.items():
            out.update(calls[slot].histories(rows))
        return out

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
        with _unavailable("get"):
            pipe = self._client.pipeline(transaction=False)
            for u in user_ids:
                pipe.hget(self.key(u), "h")
            raws = pipe.execute()
        return {u: parse_history(raw) for u, raw in zip(user_ids, raws, strict=True)}

    def clear_users(self, user_ids: Sequence[int]) -> None:
        """Forget the histories and offsets of some users."""
        if user_ids:
            with _unavailable("clear"):
                self._client.delete(*(self.key(u) for u in user_ids))

    def flush(self) -> None:
        """Delete every key under this store's prefix (tests and resets)."""
        with _unavailable("flush"):
            keys = list(self._client.scan_iter(match=f"{self.prefix}*", count=1000))
            for start in range(0, len(keys), 1000):  # a cluster client splits these by slot
                self._client.unlink(*keys[start:start + 1000])
