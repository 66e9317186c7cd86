-- Cancels one or more jobs of ONE shard. KEYS[11 + i - 1]: the pending set of job i's user.
-- ARGV: now, done retention ms, then the job ids. Returns per job:
-- 'cancelled' (was waiting: never sent), 'marked' (already claimed: the worker drops it before sending),
-- 'done' (already sent or cancelled), 'unknown'.
local now, retention = now_ms(ARGV[1]), tonumber(ARGV[2])
local out, cancelled, marked = {}, 0, 0
for i = 3, #ARGV do
    local id, pending = ARGV[i], KEYS[10 + i - 2]
    if redis.call('ZREM', K_DUE, id) == 1 or redis.call('ZREM', K_DEAD, id) == 1 then
        redis.call('HDEL', K_JOB, id)
        redis.call('HDEL', K_ATTEMPTS, id)
        redis.call('HDEL', K_ERROR, id)
        redis.call('ZREM', pending, id)
        if retention > 0 then redis.call('ZADD', K_DONE, now, id) end
        cancelled = cancelled + 1
        out[i - 2] = 'cancelled'
    elseif redis.call('ZSCORE', K_LEASE, id) then
        redis.call('SADD', K_CANCELLED, id)
        redis.call('ZREM', pending, id)
        marked = marked + 1
        out[i - 2] = 'marked'
    else
        redis.call('ZREM', pending, id)
        if redis.call('ZSCORE', K_DONE, id) then out[i - 2] = 'done' else out[i - 2] = 'unknown' end
    end
end
if cancelled > 0 then count('cancelled', cancelled) end
if marked > 0 then count('cancelMarked', marked) end
return out
