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

-- Removes every trace of a job from the shard.
local function forget(id)
    redis.call('ZREM', K_DUE, id)
    redis.call('ZREM', K_LEASE, id)
    redis.call('ZREM', K_DEAD, id)
    redis.call('HDEL', K_JOB, id)
    redis.call('HDEL', K_TOKEN, id)
    redis.call('HDEL', K_ATTEMPTS, id)
    redis.call('HDEL', K_ERROR, id)
    redis.call('SREM', K_CANCELLED, id)
    if K_PENDING then redis.call('ZREM', K_PENDING, id) end
end

-- A job that is over (sent or cancelled): forgotten, with a tombstone so a late cancel can say "already done"
-- and a repeated schedule does not send it twice.
local function finish(id, now, retention)
    forget(id)
    if retention > 0 then redis.call('ZADD', K_DONE, now, id) end
end

local function bury(id, now, reason)
    redis.call('ZREM', K_LEASE, id)
    redis.call('HDEL', K_TOKEN, id)
    redis.call('ZADD', K_DEAD, now, id)
    redis.call('HSET', K_ERROR, id, reason)
    count('dead')
end

