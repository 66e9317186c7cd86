-- Job lifecycle helpers, prepended only to the scripts that end or bury jobs (every function defined here is a
-- closure built on each call, so scripts that do not need them go without).

-- Ends a job (sent or cancelled) that the caller already took out of its state set: its fields go; with a
-- retention, the payload field stays as an empty tombstone (a late cancel answers "already done", scheduling it
-- again is a no-op) until a claim trims it.
local function finish(id, now, retention)
    if retention > 0 then
        redis.call('HDEL', K_JOB, id .. '|a', id .. '|t', id .. '|e')
        redis.call('HSET', K_JOB, id, '')
        redis.call('ZADD', K_DONE, now, id)
    else
        redis.call('HDEL', K_JOB, id, id .. '|a', id .. '|t', id .. '|e')
    end
end

-- Moves a leased job to the dead letters with its last error.
local function bury(id, now, reason)
    redis.call('ZREM', K_LEASE, id)
    redis.call('HDEL', K_JOB, id .. '|t')
    redis.call('HSET', K_JOB, id .. '|e', reason)
    redis.call('ZADD', K_DEAD, now, id)
    count('dead')
end

