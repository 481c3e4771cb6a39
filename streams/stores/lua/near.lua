-- Reads what scoring a batch needs of the co-occurrence counts and transitions
-- (streams/recall/cooccur_reader.py scores it with numpy, by the rules of model/cooccur.py and
-- model/transitions.py). Each requested item comes back as one binary string of little-endian
-- doubles. Co-occurrence: n(i), base(i), then (j, value) for each of its first `nread`
-- neighbours, strongest first, value = co(i, j) / sqrt(n(j)) ("read": the cosine's neighbour
-- half) or the stored co(i, j) ("write"); a neighbour with n(j) = 0 is left out at read, as the
-- reference does; an item never counted is n = 0 and no neighbours. Transitions: (j, t(i, j) /
-- out(i)) for each of its first `xread` followers, strongest first (empty: none).
-- ARGV: P, nread, normalize ("read"/"write"), popn, nco, xread, then nco co-occurrence items,
-- then the transition items.
-- Returns {counts' base nb, newest counted data time ts, popn most counted items, co strings,
-- transition strings}.
local P, nread, byread, popn = ARGV[1], tonumber(ARGV[2]), ARGV[3] == 'read', tonumber(ARGV[4])
local nco, xread = tonumber(ARGV[5]), tonumber(ARGV[6])
local PACK = 2000  -- doubles packed per struct.pack call
local ns = {}
-- include n_of.lua

local function packed(parts, flat)  -- unpack() of more than ~8,000 values fails: in pieces
  for lo = 1, #flat, PACK do
    local hi = math.min(lo + PACK - 1, #flat)
    parts[#parts + 1] = struct.pack('<' .. string.rep('d', hi - lo + 1), unpack(flat, lo, hi))
  end
  return table.concat(parts)
end

local out = {}
for k = 7, 6 + nco do
  local i = ARGV[k]
  local ni = n_of(i)
  local parts = {struct.pack('<dd', ni, tonumber(redis.call('HGET', P .. 'b', i) or '0'))}
  local flat = {}
  if ni > 0 then
    local list = redis.call('ZREVRANGE', P .. i, 0, nread - 1, 'WITHSCORES')
    for t = 1, #list, 2 do
      local co = tonumber(list[t + 1])
      if byread then
        local nj = n_of(list[t])
        if nj > 0 then co = co / math.sqrt(nj) else co = nil end
      end
      if co ~= nil then
        flat[#flat + 1] = tonumber(list[t])
        flat[#flat + 1] = co
      end
    end
  end
  out[#out + 1] = packed(parts, flat)
end
local xout = {}
for k = 7 + nco, #ARGV do
  local i = ARGV[k]
  local total = tonumber(redis.call('ZSCORE', P .. 'xo', i) or '0')
  local flat = {}
  if total > 0 then
    local list = redis.call('ZREVRANGE', P .. 'x' .. i, 0, xread - 1, 'WITHSCORES')
    for t = 1, #list, 2 do
      flat[#flat + 1] = tonumber(list[t])
      flat[#flat + 1] = tonumber(list[t + 1]) / total
    end
  end
  xout[#xout + 1] = packed({}, flat)
end
local pop = {}
if popn > 0 then pop = redis.call('ZREVRANGE', P .. 'n', 0, popn - 1) end
return {redis.call('GET', P .. 'nb') or '', redis.call('GET', P .. 'ts') or '', pop, out, xout}
