-- Shared prelude of every delay-queue script (prepended at load time).
-- KEYS[1..7] are the keys of ONE shard, all under the same hash tag, so every script is cluster safe; later KEYS,
-- when present, are users' pending sets (same hash tag: the users' shard).
-- The job hash holds per job: `id` -> payload ('' once finished: a tombstone), `id|a` -> attempts,
-- `id|t` -> lease token, `id|e` -> last error. One hash, so ending a job is one HDEL, not four.
local K_DUE, K_JOB, K_LEASE, K_CANCELLED = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_DEAD, K_STATS, K_DONE = KEYS[5], KEYS[6], KEYS[7]

-- Time comes from Redis unless the caller pins it (tests): producers and workers never compare their clocks.
local function now_ms(arg)
    if arg ~= nil and arg ~= '' then return tonumber(arg) end
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function count(field, by)
    redis.call('HINCRBY', K_STATS, field, by or 1)
end

