-- Schedules one or more jobs of ONE shard in one call (the caller groups jobs by shard).
-- KEYS[8...]: the pending sets of the jobs that have an inbox event, in job order.
-- ARGV: now, guard ms (how long a pending set outlives its jobs' due times), wake channel, shard, wake horizon ms
--       (consumers' longest sleep), most pending jobs per user, then per job: id, payload, mode ('in' | 'at'),
--       delay or due ms, pending score ('' = no event, and no pending key).
-- Returns per job: its due time (ms) when scheduled; -1 when it exists or finished recently (a tombstone); -2 when
-- the user's pending set is full.
local now, guard, horizon, maxPending = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5]), tonumber(ARGV[6])
local out, scheduled, duplicates, limited, earliest = {}, 0, 0, 0, nil
local job, pendingKey = 0, 7
for i = 7, #ARGV, 5 do
    job = job + 1
    local id, payload, mode, value, score = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
    local pending = nil
    if score ~= '' then
        pendingKey = pendingKey + 1
        pending = KEYS[pendingKey]
    end
    local due = value
    if mode == 'in' then due = now + value end
    local outcome = schedule_job(id, payload, due, now, pending, score, guard, maxPending)
    if outcome == 'new' then
        scheduled = scheduled + 1
        out[job] = due
        if earliest == nil or due < earliest then earliest = due end
    elseif outcome == 'limited' then
        limited = limited + 1
        out[job] = -2
    else
        duplicates = duplicates + 1
        out[job] = -1
    end
end
if scheduled > 0 then count('scheduled', scheduled) end
if duplicates > 0 then count('duplicates', duplicates) end
if limited > 0 then count('limited', limited) end
wake_if_leading(earliest, now, horizon, ARGV[3], ARGV[4])
return out
