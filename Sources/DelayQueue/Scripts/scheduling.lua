-- Scheduling helpers, prepended to `schedule` and to the scripts of other parts that schedule a push job inside
-- their own atomic step (the API's ingest).

-- Schedules one job unless its id exists or finished recently (a tombstone): returns true when new.
-- `pending` (optional) is the user's pending set, scored by the job's inbox position `score`.
local function schedule_job(id, payload, due, pending, score, pendingTTL)
    -- One call tells "new" from "live or finished": both keep the payload field.
    if redis.call('HSETNX', K_JOB, id, payload) == 0 then return false end
    redis.call('ZADD', K_DUE, due, id)
    if pending then
        redis.call('ZADD', pending, score, id)
        redis.call('PEXPIRE', pending, pendingTTL)
    end
    return true
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
