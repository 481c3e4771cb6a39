-- Reads what scoring a batch needs of the co-occurrence counts (streams/recall/cooccur_reader.py
-- scores it with numpy, by the rule of model/cooccur.py). Each requested item comes back as one
-- binary string of little-endian doubles: n(i), base(i), then (j, value) for each of its first
-- `nread` neighbours, strongest first, value = co(i, j) / sqrt(n(j)) ("read": the cosine's
-- neighbour half) or the stored co(i, j) ("write"). A neighbour with n(j) = 0 is left out at
-- read, as the reference does; an item never counted is n = 0 and no neighbours.
-- ARGV: P, nread, normalize ("read"/"write"), popn, then the items.
-- Returns {counts' base nb, newest counted data time ts, popn most counted items, item strings}.
local P, nread, byread, popn = ARGV[1], tonumber(ARGV[2]), ARGV[3] == 'read', tonumber(ARGV[4])
local PACK = 2000  -- doubles packed per struct.pack call
local ns = {}
-- include n_of.lua
local out = {}
for k = 5, #ARGV do
  local i = ARGV[k]
  local ni = n_of(i)
  local parts = {struct.pack('<dd', ni, tonumber(redis.call('HGET', P .. 'b', i) or '0'))}
  if ni > 0 then
    local list = redis.call('ZREVRANGE', P .. i, 0, nread - 1, 'WITHSCORES')
    local flat = {}
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
    for lo = 1, #flat, PACK do  -- unpack() of more than ~8,000 values fails: pack in pieces
      local hi = math.min(lo + PACK - 1, #flat)
      parts[#parts + 1] = struct.pack('<' .. string.rep('d', hi - lo + 1), unpack(flat, lo, hi))
    end
  end
  out[#out + 1] = table.concat(parts)
end
local pop = {}
if popn > 0 then pop = redis.call('ZREVRANGE', P .. 'n', 0, popn - 1) end
return {redis.call('GET', P .. 'nb') or '', redis.call('GET', P .. 'ts') or '', pop, out}
