"""The Lua scripts behind the Redis state: each operation is one script, so it is atomic
across every worker and instance.

Scripts run by their SHA (redis-py's Script: EVALSHA, loading the script if Redis lacks
it), so during a rolling deploy old and new processes each run their own version. What
a script stores is versioned in the key names (`LAYOUT`): a change to the layout takes a
new version, and processes of different layouts never read each other's data.

Times come from Redis (`TIME`), so instances with skewed clocks agree on every window.
Negations are written `0 - x`: Lua's `-x` of zero is -0, which HINCRBY refuses.
"""

from __future__ import annotations

LAYOUT = "v1"

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Budget keys: per account, a hash {spent, reserved, loaded} and a sorted set of holds
# ("<id>:<amount>", scored by when the hold lapses). A hold whose process died lapses by
# itself; settling or releasing one twice is harmless.
_PURGE_HOLDS = """
local function purge(balance, holds, now)
  local lapsed = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  if #lapsed > 0 then
    local total = 0
    for _, hold in ipairs(lapsed) do
      total = total + tonumber(string.match(hold, ':(%d+)$'))
    end
    redis.call('HINCRBY', balance, 'reserved', 0 - total)
    redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
  end
end
"""

# KEYS: balance1, holds1, balance2, holds2, ...
# ARGV: amount, hold id, hold ttl ms, key ttl ms, limit1, limit2, ... (-1: unlimited)
# -> {0} held | {-1, i, left} over budget i | {-2, i} account i's spend not loaded yet
BUDGET_RESERVE = (
    _NOW
    + _PURGE_HOLDS
    + """
local amount, id = tonumber(ARGV[1]), ARGV[2]
local hold_ttl, key_ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS / 2
for i = 1, n do
  purge(KEYS[2 * i - 1], KEYS[2 * i], now)
end
for i = 1, n do
  local limit = tonumber(ARGV[4 + i])
  if limit >= 0 then
    local balance = KEYS[2 * i - 1]
    if redis.call('HEXISTS', balance, 'loaded') == 0 then
      return {-2, i}
    end
    local spent = tonumber(redis.call('HGET', balance, 'spent') or '0')
    local reserved = tonumber(redis.call('HGET', balance, 'reserved') or '0')
    local need = math.max(amount, 1)
    if spent + reserved + need > limit then
      return {-1, i, math.max(0, limit - spent - reserved)}
    end
  end
end
for i = 1, n do
  local balance, holds = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('HINCRBY', balance, 'reserved', amount)
  redis.call('ZADD', holds, now + hold_ttl, id .. ':' .. amount)
  redis.call('PEXPIRE', balance, key_ttl)
  redis.call('PEXPIRE', holds, key_ttl)
end
return {0}
"""
)

# KEYS: as for reserve. ARGV: hold id, amount, cost (-1: release, nothing spent), key ttl ms
# -> {spent after, for each account}
BUDGET_SETTLE = """
local id, amount, cost, key_ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local after = {}
for i = 1, #KEYS / 2 do
  local balance, holds = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('ZREM', holds, id .. ':' .. amount) == 1 then
    redis.call('HINCRBY', balance, 'reserved', 0 - amount)
  end
  if cost >= 0 then
    after[i] = redis.call('HINCRBY', balance, 'spent', cost)
    redis.call('PEXPIRE', balance, key_ttl)
  else
    after[i] = tonumber(redis.call('HGET', balance, 'spent') or '0')
  end
end
return after
"""

# The month's spend so far from the durable log, once per account and month: later
# settles add to it (a request settled before the load is counted twice at most, which
# errs on the safe side). KEYS: balance. ARGV: spent, key ttl ms.
BUDGET_LOAD = """
if redis.call('HSETNX', KEYS[1], 'loaded', 1) == 1 then
  redis.call('HINCRBY', KEYS[1], 'spent', tonumber(ARGV[1]))
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
"""

# KEYS: as for reserve. ARGV: limit1, limit2, ... -> {min left} or {-2, i} (not loaded)
BUDGET_REMAINING = (
    _NOW
    + _PURGE_HOLDS
    + """
local left = nil
for i = 1, #KEYS / 2 do
  local balance = KEYS[2 * i - 1]
  purge(balance, KEYS[2 * i], now)
  local limit = tonumber(ARGV[i])
  if limit >= 0 then
    if redis.call('HEXISTS', balance, 'loaded') == 0 then
      return {-2, i}
    end
    local spent = tonumber(redis.call('HGET', balance, 'spent') or '0')
    local reserved = tonumber(redis.call('HGET', balance, 'reserved') or '0')
    local this = math.max(0, limit - spent - reserved)
    if left == nil or this < left then
      left = this
    end
  end
end
return {left or -1}
"""
)

# Rate keys: per key, a sorted set of the window's requests (id -> time) and a hash of
# their tokens (id -> tokens, plus '_total').
_PURGE_WINDOW = """
local function expire(window, tokens, cutoff)
  local old = redis.call('ZRANGEBYSCORE', window, '-inf', cutoff)
  if #old > 0 then
    local total = 0
    for _, id in ipairs(old) do
      total = total + tonumber(redis.call('HGET', tokens, id) or '0')
      redis.call('HDEL', tokens, id)
    end
    redis.call('HINCRBY', tokens, '_total', 0 - total)
    redis.call('ZREMRANGEBYSCORE', window, '-inf', cutoff)
  end
end
local function reset_ms(window, now, nth)
  local entry = redis.call('ZRANGE', window, nth, nth, 'WITHSCORES')
  if #entry == 0 then
    return 0
  end
  return math.max(0, tonumber(entry[2]) + 60000 - now)
end
"""

# KEYS: window, tokens. ARGV: rpm (-1: none), tpm (-1: none), tokens, request id
# -> {0, requests, tokens used, requests reset ms, tokens reset ms}
#  | {-1, requests reset ms, requests, tokens used} (rpm) | {-2, tokens reset ms, ...} (tpm)
RATE_RESERVE = (
    _NOW
    + _PURGE_WINDOW
    + """
local window, tokens = KEYS[1], KEYS[2]
local rpm, tpm, want, id = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
expire(window, tokens, now - 60000)
local count = redis.call('ZCARD', window)
local used = tonumber(redis.call('HGET', tokens, '_total') or '0')
if rpm >= 0 and count + 1 > rpm then
  return {-1, reset_ms(window, now, math.max(0, count - rpm)), count, used}
end
if tpm >= 0 and used + want > tpm then
  return {-2, reset_ms(window, now, 0), count, used}
end
redis.call('ZADD', window, now, id)
redis.call('HSET', tokens, id, want)
redis.call('HINCRBY', tokens, '_total', want)
redis.call('PEXPIRE', window, 61000)
redis.call('PEXPIRE', tokens, 61000)
return {0, count + 1, used + want, reset_ms(window, now, 0), reset_ms(window, now, 0)}
"""
)

# KEYS: window, tokens. ARGV: request id, real tokens.
RATE_SETTLE = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[2], '_total', tonumber(ARGV[2]) - tonumber(old))
end
return 0
"""

# KEYS: window, tokens. ARGV: tpm -> tokens left
RATE_AVAILABLE = (
    _NOW
    + _PURGE_WINDOW
    + """
expire(KEYS[1], KEYS[2], now - 60000)
local used = tonumber(redis.call('HGET', KEYS[2], '_total') or '0')
return math.max(0, tonumber(ARGV[1]) - used)
"""
)

# Answers: each entry a string with a TTL; a sorted set of entries by age and a hash of
# their sizes keep the total under the byte bound (oldest out first).
# KEYS: entry, order, sizes, in-flight claim.
# ARGV: key, value, ttl ms, max bytes, max entries, the entries' key prefix
CACHE_PUT = (
    _NOW
    + """
local entry, order, sizes, claim = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local key, value = ARGV[1], ARGV[2]
local ttl, max_bytes, max_entries = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local prefix = ARGV[6]
local function drop(name)
  local size = tonumber(redis.call('HGET', sizes, name) or '0')
  redis.call('HDEL', sizes, name)
  redis.call('ZREM', order, name)
  redis.call('DEL', prefix .. name)
  redis.call('HINCRBY', sizes, '_total', 0 - size)
end
for _, name in ipairs(redis.call('ZRANGEBYSCORE', order, '-inf', now - ttl)) do
  drop(name)
end
if redis.call('HEXISTS', sizes, key) == 1 then
  drop(key)
end
redis.call('SET', entry, value, 'PX', ttl)
redis.call('ZADD', order, now, key)
redis.call('HSET', sizes, key, #value)
local total = redis.call('HINCRBY', sizes, '_total', #value)
while total > max_bytes or redis.call('ZCARD', order) > max_entries do
  local oldest = redis.call('ZRANGE', order, 0, 0)
  if #oldest == 0 then
    break
  end
  drop(oldest[1])
  total = tonumber(redis.call('HGET', sizes, '_total') or '0')
end
redis.call('DEL', claim)
return total
"""
)

# KEYS: claim. ARGV: token -> deletes the claim only if it is still this holder's.
RELEASE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
