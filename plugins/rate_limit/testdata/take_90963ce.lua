local t = redis.call('TIME')
local now = (tonumber(t[1]) - 1700000000) * 1000000 + tonumber(t[2])
local want = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local charge = 0
local na = 2 + 2 * n
if ARGV[na + 1] then
  local field, epoch = ARGV[na + 1], ARGV[na + 2]
  local function applied(f, v)
    local prev = redis.call('HGET', KEYS[2], f)
    local done = 0
    if prev then
      local e, c = string.match(prev, '^([^:]+):(.+)$')
      if e == epoch then done = tonumber(c) end
    end
    local total = tonumber(v)
    if total > done then
      redis.call('HSET', KEYS[2], f, epoch .. ':' .. v)
      return total - done
    end
    return 0
  end
  charge = applied(field, ARGV[na + 3])
  if ARGV[na + 5] then charge = charge - applied(field .. ':credit', ARGV[na + 5]) end
  redis.call('PEXPIRE', KEYS[2], ARGV[na + 4])
end
local eps = 1e-6
local tats = {}
local v = redis.call('GET', KEYS[1])
if v then
  local i = 1
  for s in string.gmatch(v, '[^,]+') do
    tats[i] = tonumber(s)
    i = i + 1
  end
end
-- refusal is what a request after this decision would be told if it
-- were refused now: the limit that keeps it waiting longest, how long,
-- and how far that bucket is from full.
local function refusal()
  local idx, retry, reset = 1, 0, 0
  for j = 1, n do
    local T, tau = tonumber(ARGV[1 + 2 * j]), tonumber(ARGV[2 + 2 * j])
    local w = tats[j] + T - tau - now
    if w > retry then
      idx, retry, reset = j, w, tats[j] - now
    end
  end
  return idx, retry, reset
end
local grant = want
for j = 1, n do
  local T, tau = tonumber(ARGV[1 + 2 * j]), tonumber(ARGV[2 + 2 * j])
  local tat = tats[j]
  if tat == nil or tat < now then tat = now end
  if charge ~= 0 then tat = math.max(now, math.min(tat + charge * T, now + 2 * tau)) end
  tats[j] = tat
  local avail = math.floor((tau - (tat - now)) / T + eps)
  if avail < grant then grant = avail end
end
if grant > 0 then
  local idx, rem, reset, ttl = 0, 0, 0, 0
  local out = {}
  for j = 1, n do
    local T, tau = tonumber(ARGV[1 + 2 * j]), tonumber(ARGV[2 + 2 * j])
    local tat = tats[j] + grant * T
    tats[j] = tat
    local r = math.floor((tau - (tat - now)) / T + eps)
    local rs = tat - now
    if idx == 0 or r < rem or (r == rem and rs > reset) then
      idx, rem, reset = j, r, rs
    end
    if rs > ttl then ttl = rs end
    out[j] = string.format('%.17g', tat)
  end
  redis.call('SET', KEYS[1], table.concat(out, ','), 'PX', math.ceil(ttl / 1000) + 1)
  local res = {grant, idx - 1, rem, math.ceil(reset), 0}
  for j = 1, n do res[5 + j] = math.ceil(tats[j] - now) end
  if grant < want then
    local ridx, retry, rreset = refusal()
    res[5] = math.ceil(retry)
    res[6 + n], res[7 + n] = ridx - 1, math.ceil(rreset)
  end
  return res
end
local idx, retry, reset = refusal()
if charge ~= 0 then
  local out, ttl = {}, 0
  for j = 1, n do
    if tats[j] - now > ttl then ttl = tats[j] - now end
    out[j] = string.format('%.17g', tats[j])
  end
  redis.call('SET', KEYS[1], table.concat(out, ','), 'PX', math.ceil(ttl / 1000) + 1)
end
local res = {0, idx - 1, 0, math.ceil(reset), math.ceil(retry)}
for j = 1, n do res[5 + j] = math.ceil(tats[j] - now) end
return res
