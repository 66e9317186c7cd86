-- Shared prelude of every delay-queue script (prepended at load time).
-- KEYS[1..10] are the keys of ONE shard, all under the same hash tag, so every script is cluster safe;
-- KEYS[11], when present, is the user's pending set (same hash tag: the user's shard).
local K_DUE, K_JOB, K_LEASE, K_TOKEN, K_ATTEMPTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local K_CANCELLED, K_DEAD, K_ERROR, K_STATS, K_DONE = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local K_PENDING = KEYS[11]

-- Time comes from Redis unless the caller pins it (tests): producers and workers never compare their clocks.
local function now_ms(arg)
    if arg ~= nil and arg ~= '' then return tonumber(arg) end
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function count(field, by)
    redis.call('HINCRBY', K_STATS, field, by or 1)
end

