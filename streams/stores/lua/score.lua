-- Scores every row of a batch against the co-occurrence counts (streams/recall/cooccur_reader.py):
-- the rule of model/cooccur.py, the same float operations in the same order.
local P, nread, pd, half, byread = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), ARGV[5] == 'read'
local topn, popn = tonumber(ARGV[6]), tonumber(ARGV[7])
local nbase = tonumber(redis.call('GET', P .. 'nb') or '0')
local ns = {}
-- include n_of.lua
local near = {}
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
