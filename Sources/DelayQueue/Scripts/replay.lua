-- Moves dead letters back to due now, with fresh attempts. KEYS[8...]: per job, its user's pending set, its
-- notification's record and the set of devices it reached, kept alive for another guard period (the job may be
-- sent again from now on).
-- ARGV: now, guard ms (how long a pending set outlives its jobs' due times), then the job ids.
local now, guard = now_ms(ARGV[1]), tonumber(ARGV[2])
local replayed = 0
for i = 3, #ARGV do
    local id = ARGV[i]
    if redis.call('ZREM', K_DEAD, id) == 1 then
        redis.call('HDEL', K_JOB, id .. '|a', id .. '|e')
        redis.call('ZADD', K_DUE, now, id)
        local base = 8 + 3 * (i - 3)
        keep_alive(KEYS[base], guard)
        keep_alive(KEYS[base + 1], guard)
        keep_alive(KEYS[base + 2], guard)
        replayed = replayed + 1
    end
end
if replayed > 0 then count('replayed', replayed) end
return replayed
