-- Schedules one or more jobs of ONE shard in one call (the caller groups jobs by shard).
-- KEYS[8...]: the pending sets of the jobs that have an inbox event, in job order.
-- ARGV: now, pending TTL ms, wake channel, shard, wake horizon ms (consumers' longest sleep), then per job: id,
--       payload, mode ('in' | 'at'), delay or due ms, pending score ('' = no event, and no pending key).
-- Returns per job: its due time (ms) when scheduled; -1 when it exists or finished recently (a tombstone).
local now, pendingTTL, horizon = now_ms(ARGV[1]), ARGV[2], tonumber(ARGV[5])
local out, scheduled, duplicates, earliest = {}, 0, 0, nil
local job, pendingKey = 0, 7
for i = 6, #ARGV, 5 do
    job = job + 1
    local id, payload, mode, value, score = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
    local pending = nil
    if score ~= '' then
        pendingKey = pendingKey + 1
        pending = KEYS[pendingKey]
    end
    local due = value
    if mode == 'in' then due = now + value end
    -- One call tells "new" from "live or finished": both keep the payload field.
    if redis.call('HSETNX', K_JOB, id, payload) == 0 then
        duplicates = duplicates + 1
        out[job] = -1
    else
        redis.call('ZADD', K_DUE, due, id)
        if pending then
            redis.call('ZADD', pending, score, id)
            redis.call('PEXPIRE', pending, pendingTTL)
        end
        scheduled = scheduled + 1
        out[job] = due
        if earliest == nil or due < earliest then earliest = due end
    end
end
if scheduled > 0 then count('scheduled', scheduled) end
if duplicates > 0 then count('duplicates', duplicates) end
-- Wake sleeping consumers when a job is due before they would wake anyway: they sleep until the shard's old
-- head, at most `horizon` ms. A job due later is found by their next regular claim, so no head check is needed.
if earliest ~= nil and earliest <= now + horizon then
    -- After the inserts the head is at most `earliest`; equal means a new job leads the shard.
    local head = redis.call('ZRANGE', K_DUE, 0, 0, 'WITHSCORES')[2]
    if tonumber(head) == earliest then
        redis.call('PUBLISH', ARGV[3], ARGV[4] .. ' ' .. earliest)
    end
end
return out
