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

-- Moves a leased job to the dead letters with its last error. Its pending entry stays: an ack still cancels a dead
-- letter (so a replay cannot push what the user has seen), and the retention trim removes both together.
local function bury(id, now, reason)
    redis.call('ZREM', K_LEASE, id)
    redis.call('HDEL', K_JOB, id .. '|t')
    redis.call('HSET', K_JOB, id .. '|e', reason)
    redis.call('ZADD', K_DEAD, now, id)
    count('dead')
end


-- Cancels one job: 'cancelled' (was waiting or dead: never sent), 'marked' (already claimed: the worker drops it
-- before sending), 'done' (already sent or cancelled) or 'unknown'. The caller counts the outcomes.
-- `pending` (optional) is the user's pending set: whatever the outcome, the job's entry there has served its
-- purpose, so it goes (a marked job is finished by its worker, who then finds nothing left to remove).
local function cancel_job(id, now, retention, pending)
    if pending then redis.call('ZREM', pending, id) end
    if redis.call('ZREM', K_DUE, id) == 1 or redis.call('ZREM', K_DEAD, id) == 1 then
        finish(id, now, retention)
        return 'cancelled'
    elseif redis.call('ZSCORE', K_LEASE, id) then
        redis.call('SADD', K_CANCELLED, id)
        return 'marked'
    elseif redis.call('HGET', K_JOB, id) == '' then
        return 'done'
    end
    return 'unknown'
end

-- Adds the counters of cancel outcomes.
local function count_cancels(cancelled, marked)
    if cancelled > 0 then count('cancelled', cancelled) end
    if marked > 0 then count('cancelMarked', marked) end
end
