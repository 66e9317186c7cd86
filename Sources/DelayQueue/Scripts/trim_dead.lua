-- Retention of ONE shard, step two: removes the dead letters trim.lua listed, payload and all (a tombstone stays
-- for the done retention, so a late retried schedule stays a no-op), with their entries in the users' pending
-- sets. KEYS[8...]: the pending set of each job's user. ARGV: now, done retention ms, then per job: id, score.
-- A dead letter replayed since the listing no longer has that score, and stays.
local now, retention = now_ms(ARGV[1]), tonumber(ARGV[2])
local removed, job = 0, 0
for i = 3, #ARGV, 2 do
    job = job + 1
    local id = ARGV[i]
    local score = redis.call('ZSCORE', K_DEAD, id)
    if score and tonumber(score) == tonumber(ARGV[i + 1]) then
        redis.call('ZREM', K_DEAD, id)
        redis.call('ZREM', KEYS[7 + job], id)
        finish(id, now, retention)
        removed = removed + 1
    end
end
if removed > 0 then count('deadExpired', removed) end
return removed
