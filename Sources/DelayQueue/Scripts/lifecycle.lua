-- Job lifecycle helpers, prepended only to the scripts that finish or bury jobs (every function defined
-- here is a closure built on each call, so scripts that do not need them go without).
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

