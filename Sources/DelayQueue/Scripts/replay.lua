-- Moves dead letters back to due now, with fresh attempts. KEYS[8...]: the pending set of each job's user.
-- ARGV: now, guard ms (how long a pending set outlives its jobs' due times), then the job ids.
local now, guard = now_ms(ARGV[1]), tonumber(ARGV[2])
local replayed = 0
for i = 3, #ARGV do
    local id = ARGV[i]
    if redis.call('ZREM', K_DEAD, id) == 1 then
        redis.call('HDEL', K_JOB, id .. '|a', id .. '|e')
        redis.call('ZADD', K_DUE, now, id)
        local pending = KEYS[5 + i]
        if redis.call('EXISTS', pending) == 1 then keep_alive(pending, guard) end
        replayed = replayed + 1
    end
end
if replayed > 0 then count('replayed', replayed) end
return replayed
