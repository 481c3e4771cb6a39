-- The Lua script that appends a micro-batch of clicks to the users' Redis hashes in one call.
--
-- One hash per user at `{prefix}{user_id}`:
--   h      -> "ts seq item;ts seq item;..." the last `history_len` clicks, oldest first by
--             (ts, seq); ts and item are kept as the exact strings Python sent (no float rounding)
--   n      -> arrival counter of this user (seq of the last applied click, breaks ts ties)
--   s      -> "item item ...": the user's seen items, each once, least recently clicked first,
--             at most `seen_max` (past it the least recently clicked is dropped); absent: none
--             seen (older hashes); a store keeping no seen items (seen_max 0) neither reads nor
--             writes it
--   o<p>   -> "offset epoch": last applied Kafka offset of partition p for this user and the
--             epoch (topic id) of the log it came from: the replay guard. A click of another
--             epoch (the topic was recreated: a broker reset) starts the guard afresh.
--
-- Co-occurrence counts (model/cooccur.py has the rule and its reference copy), when ARGV co is
-- 1, in keys under the co prefix P, updated by the same call for each applied click:
--   P<item>  -> sorted set: the item's strongest neighbours (at most cap), stored weights
--   Pb       -> hash item -> base data time of the item's neighbour set (only with a
--               half-life: without decay every weight is 1 and no base is needed)
--   Pn, Pnb  -> sorted set item -> stored count n, and the counts' common base
--   Pts      -> data time of the newest click counted (what `counts_ts` reports)
--   Px<item> -> sorted set: the item's strongest followers t(item, j) (at most next cap),
--               against the item's base (model/transitions.py)
--   Pxo      -> sorted set item -> out(item), all its transitions out (same base)
--   Pq, Pqs  -> with a watermark key or "@defer": clicks waiting to be counted (score ts, member
--               "seq item prev,prev,..."), and the sequence that orders equal times
-- A click is counted at once, or, when a watermark key is given, queued and counted (in ts
-- order) by the first call that finds the key's data time at or past it. In place of the key,
-- "@defer" queues every click and counts none, and "@all" (a call with no clicks) counts all
-- that wait: the worker counts a batch beside its recall, off the append's round trip. A
-- replayed click is not applied, so it is never queued or counted twice.
--
-- ARGV: history_len, ttl_ms (0 = none), seen_max (0 = no seen items), co (0/1), co window,
--       co cap, co half-life in data seconds (0 = no decay), co prefix P, watermark key ("" =
--       none), co normalize ("write" or "read"), next window (0 = no transitions), next cap,
--       then per click: key index, item, ts, partition, offset, epoch.
-- Returns, per touched key in KEYS order: {key index, seen ("item item ...", oldest first),
--       item, item, ...} with the history oldest first.
--
-- The seen list stays one string while the script runs: a click's item is looked up with a
-- plain `string.find` (C, about 7 KB at 1000 items), moved or appended with `string.sub` and
-- concatenation, and the oldest item cut off the front; its length is counted once per user.
-- Parsing it into a Lua table (list + item -> position set) per user was measured 4x slower: a
-- batch of 64 users with 1000 seen items each ran 26 ms in Redis that way, 5-6 ms this way (the
-- history alone: 2 ms; 200 seen items: 6.7 against 2.2-2.4 ms). A replayed click costs nothing.
local hlen = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local smax = tonumber(ARGV[3])
local co = ARGV[4] == '1'
local cowin, cocap, half, P, wmkey = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]),
  ARGV[8], ARGV[9]
local cowrite = ARGV[10] == 'write'
local nxwin, nxcap = tonumber(ARGV[11]), tonumber(ARGV[12])
local st = {}

local function fmt(x)
  if x == 1 then return '1' end
  return string.format('%.17g', x)
end

-- values read once per call and kept up to date here: bases, counts n, the counts' base
local bases, ns, nbase, lastts, newts = {}, {}, nil, nil, false

local function weight(item, ts)  -- the click's weight in item's set; moves the base if needed
  if half == 0 then return 1 end  -- no decay: every weight is 1 and no base is kept
  local b = bases[item]
  if b == nil then
    b = tonumber(redis.call('HGET', P .. 'b', item) or 'nan')
  end
  if b ~= b then  -- no base yet (nan)
    redis.call('HSET', P .. 'b', item, fmt(ts))
    bases[item] = ts
    return 1
  end
  bases[item] = b
  local lg = 0
  if half > 0 then lg = (ts - b) / half end
  if lg > 30 then
    redis.call('ZUNIONSTORE', P .. item, 1, P .. item, 'WEIGHTS', fmt(2 ^ -lg))
    if nxwin > 0 then  -- the transitions out of item share its base
      redis.call('ZUNIONSTORE', P .. 'x' .. item, 1, P .. 'x' .. item, 'WEIGHTS', fmt(2 ^ -lg))
      local out = redis.call('ZSCORE', P .. 'xo', item)
      if out then redis.call('ZADD', P .. 'xo', fmt(tonumber(out) * 2 ^ -lg), item) end
    end
    redis.call('HSET', P .. 'b', item, fmt(ts))
    bases[item] = ts
    lg = 0
  end
  return 2 ^ lg
end

local function n_base()
  if nbase == nil then nbase = tonumber(redis.call('GET', P .. 'nb') or 'nan') end
  return nbase
end

local function count(item, ts)
  local b = n_base()
  local lg = 0
  if b ~= b then
    redis.call('SET', P .. 'nb', fmt(ts))
    nbase = ts
  elseif half > 0 then
    lg = (ts - b) / half
    if lg > 30 then
      redis.call('ZUNIONSTORE', P .. 'n', 1, P .. 'n', 'WEIGHTS', fmt(2 ^ -lg))
      redis.call('SET', P .. 'nb', fmt(ts))
      nbase, ns, lg = ts, {}, 0
    end
  end
  ns[item] = tonumber(redis.call('ZINCRBY', P .. 'n', fmt(2 ^ lg), item))
end

-- include n_of.lua

-- per set touched by this call: an upper bound of its size, so that ZCARD is asked only when
-- the set may be past its cap. A ZINCRBY whose result is not above the increment may have
-- added a member (scores are positive), so the bound grows; one that is above it did not, and
-- a set no call left past its cap is not past it after such a ZINCRBY (no ZCARD at all).
local sizes = {}

local function add(key, member, w, cap)  -- ZINCRBY, then the weakest go past cap
  local ws = fmt(w)
  local now = tonumber(redis.call('ZINCRBY', key, ws, member))
  local size = sizes[key]
  local grew = now <= tonumber(ws)
  if size == nil then
    if not grew then return end  -- an existing member: the set's size did not change
    size = redis.call('ZCARD', key)
  elseif grew then
    size = size + 1
  end
  if size > cap then
    size = redis.call('ZCARD', key)
    if size > cap then
      redis.call('ZREMRANGEBYRANK', key, 0, size - cap - 1)
      size = cap
    end
  end
  sizes[key] = size
end

local function bump(i, j, ts)
  local key = P .. i
  local w = weight(i, ts)
  if cowrite then  -- divided by sqrt(n(j)) as it stands, in units of this click
    local n = n_of(j)
    if n > 0 and half > 0 then n = n * 2 ^ ((n_base() - ts) / half) end
    if n > 0 then w = w / math.sqrt(n) end
  end
  add(key, j, w, cocap)
end

local function cooccur(item, ts, prev)  -- prev: distinct earlier items, newest first
  weight(item, ts)
  count(item, ts)
  for _, i in ipairs(prev) do
    if i ~= item then
      bump(i, item, ts)
      bump(item, i, ts)
    end
  end
  for k = 1, math.min(nxwin, #prev) do  -- item follows the newest nxwin of them
    local i = prev[k]
    if i ~= item then
      local w = weight(i, ts)
      add(P .. 'x' .. i, item, w, nxcap)
      redis.call('ZINCRBY', P .. 'xo', fmt(w), i)
    end
  end
  if lastts == nil then lastts = tonumber(redis.call('GET', P .. 'ts') or '-inf') end
  if ts > lastts then  -- written once, at the end of the call
    lastts, newts = ts, true
  end
end

local function recent(h)  -- distinct items of the last cowin entries, newest first
  local out, got = {}, {}
  local lo = math.max(1, #h - cowin + 1)
  for j = #h, lo, -1 do
    local item = h[j][3]
    if not got[item] then
      got[item] = true
      out[#out + 1] = item
    end
  end
  return out
end

local function see(s, item)
  local text = s.seen
  if s.count == nil then
    if text == '' then s.count = 0 else s.count = select(2, string.gsub(text, ' ', ' ')) + 1 end
  end
  local a, b = string.find(' ' .. text .. ' ', ' ' .. item .. ' ', 1, true)
  if a == nil then
    s.count = s.count + 1
  elseif b - 1 > #text then
    return
  else
    text = string.sub(text, 1, a - 1) .. string.sub(text, b)
  end
  if text == '' then text = item else text = text .. ' ' .. item end
  while s.count > smax do
    text = string.sub(text, (string.find(text, ' ', 1, true) or #text) + 1)
    s.count = s.count - 1
  end
  s.seen = text
end

for i = 13, #ARGV, 6 do
  local k = tonumber(ARGV[i])
  local s = st[k]
  if s == nil then
    local f = redis.call('HGETALL', KEYS[k])
    s = {h = {}, n = 0, off = {}, raw = {}, dirty = false, seen = ''}
    for j = 1, #f, 2 do
      local name, v = f[j], f[j + 1]
      if name == 'h' then
        for ts, seq, item in string.gmatch(v, '([^ ;]+) ([^ ;]+) ([^ ;]+)') do
          s.h[#s.h + 1] = {tonumber(ts), tonumber(seq), item, ts}
        end
      elseif name == 'n' then
        s.n = tonumber(v)
      elseif name == 's' then
        if smax > 0 then s.seen = v end
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
    if co and wmkey == '' then
      cooccur(ARGV[i + 1], ts, recent(h))
    elseif co then
      local seq = redis.call('INCR', P .. 'qs')
      redis.call('ZADD', P .. 'q', ARGV[i + 2], string.format('%015d', seq) .. ' ' ..
        ARGV[i + 1] .. ' ' .. table.concat(recent(h), ','))
    end
    local pos = #h + 1
    while pos > 1 and h[pos - 1][1] > ts do pos = pos - 1 end
    table.insert(h, pos, {ts, s.n, ARGV[i + 1], ARGV[i + 2]})
    while #h > hlen do table.remove(h, 1) end
    if smax > 0 then see(s, ARGV[i + 1]) end
  end
end
if co and wmkey ~= '' and wmkey ~= '@defer' then  -- count the queued clicks that are due
  local w = '+inf'
  if wmkey ~= '@all' then w = redis.call('GET', wmkey) end  -- those the watermark reached
  if w then
    local due = redis.call('ZRANGEBYSCORE', P .. 'q', '-inf', w, 'WITHSCORES')
    for j = 1, #due, 2 do
      local _, item, prev = string.match(due[j], '^(%S+) (%S+) ?(.*)$')
      local items = {}
      for x in string.gmatch(prev, '[^,]+') do items[#items + 1] = x end
      cooccur(item, tonumber(due[j + 1]), items)
    end
    if #due > 0 then redis.call('ZREMRANGEBYSCORE', P .. 'q', '-inf', w) end
  end
end
if newts then redis.call('SET', P .. 'ts', fmt(lastts)) end
local out = {}
for k = 1, #KEYS do
  local s = st[k]
  local seen = s.seen
  local row = {k, seen}
  local parts = {}
  for j, e in ipairs(s.h) do
    row[#row + 1] = e[3]
    parts[j] = e[4] .. ' ' .. string.format('%d', e[2]) .. ' ' .. e[3]
  end
  if s.dirty then
    local args = {'h', table.concat(parts, ';'), 'n', string.format('%d', s.n)}
    if smax > 0 then
      args[#args + 1] = 's'
      args[#args + 1] = seen
    end
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
