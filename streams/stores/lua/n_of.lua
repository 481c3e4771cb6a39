-- An item's stored count n, read once per script call (`ns` caches it; the append script
-- keeps it current as it counts). Included by append.lua and near.lua where their
-- locals P and ns are in scope.
local function n_of(item)
  local n = ns[item]
  if n == nil then
    n = tonumber(redis.call('ZSCORE', P .. 'n', item) or '0')
    ns[item] = n
  end
  return n
end
