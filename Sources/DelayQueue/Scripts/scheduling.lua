-- Scheduling helpers, prepended to `schedule` and to the scripts of other parts that schedule a push job inside
-- their own atomic step (the API's ingest).

-- Makes `key` live at least `ms` from now: never shortens an expiry, so a record or set that guards a job due
-- later keeps guarding it when a nearer job touches it.
local function keep_alive(key, ms)
    -- GT only lengthens an expiry; a key without one yet (just created) refuses it, and gets a plain one. A missing
    -- key has nothing to keep (PTTL -2).
    if redis.call('PEXPIRE', key, ms, 'GT') == 0 and redis.call('PTTL', key) == -1 then
        redis.call('PEXPIRE', key, ms)
    end
end

-- keep_alive for a key the caller knows it just created (no expiry yet): one call instead of two.
local function keep_alive_new(key, ms, isNew)
    if isNew then redis.call('PEXPIRE', key, ms) else keep_alive(key, ms) end
end

-- Schedules one job unless its id exists or finished recently (a tombstone): returns 'new', 'duplicate', or
-- 'limited' when the user's pending set already holds `maxPending` jobs (nothing is written then).
-- `pending` (optional) is the user's pending set, scored by the job's inbox position `score`; it lives at least
-- `guard` ms past the job's due time (the job's retry window and dead-letter retention), so an ack can always
-- find the job while it may still be sent.
local function schedule_job(id, payload, due, now, pending, score, guard, maxPending)
    local size = 0
    if pending then size = redis.call('ZCARD', pending) end
    if pending and size >= maxPending then
        if redis.call('HEXISTS', K_JOB, id) == 1 then return 'duplicate' end
        -- Entries of jobs that ended without the set being told (sets written before jobs cleaned up after
        -- themselves, recipients a retract could not declare) do not count: drop a bounded slice of the oldest.
        local oldest = redis.call('ZRANGE', pending, 0, 99)
        for _, old in ipairs(oldest) do
            local stored = redis.call('HGET', K_JOB, old)
            if not stored or stored == '' then redis.call('ZREM', pending, old) end
        end
        if redis.call('ZCARD', pending) >= maxPending then return 'limited' end
    end
    -- One call tells "new" from "live or finished": both keep the payload field.
    if redis.call('HSETNX', K_JOB, id, payload) == 0 then return 'duplicate' end
    redis.call('ZADD', K_DUE, due, id)
    if pending then
        redis.call('ZADD', pending, score, id)
        keep_alive_new(pending, math.max(due - now, 0) + guard, size == 0)
    end
    return 'new'
end

-- Wakes sleeping consumers when a job is due before they would wake anyway: they sleep until the shard's old
-- head, at most `horizon` ms. A job due later is found by their next regular claim, so no head check is needed.
local function wake_if_leading(earliest, now, horizon, channel, shard)
    if earliest == nil or earliest > now + horizon then return end
    -- After the inserts the head is at most `earliest`; equal means a new job leads the shard.
    local head = redis.call('ZRANGE', K_DUE, 0, 0, 'WITHSCORES')[2]
    if tonumber(head) == earliest then
        redis.call('PUBLISH', channel, shard .. ' ' .. earliest)
    end
end
