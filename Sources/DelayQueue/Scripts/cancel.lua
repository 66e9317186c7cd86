-- Cancels one or more jobs of ONE shard. ARGV: now, done retention ms, then the job ids. Returns per job:
-- 'cancelled' (was waiting or dead: never sent), 'marked' (already claimed: the worker drops it before sending),
-- 'done' (already sent or cancelled), 'unknown'.
-- Users' pending sets are not touched: cancel_up_to skips and removes entries of jobs that are gone.
local now, retention = now_ms(ARGV[1]), tonumber(ARGV[2])
local out, cancelled, marked = {}, 0, 0
for i = 3, #ARGV do
    local id = ARGV[i]
    if redis.call('ZREM', K_DUE, id) == 1 or redis.call('ZREM', K_DEAD, id) == 1 then
        finish(id, now, retention)
        cancelled = cancelled + 1
        out[i - 2] = 'cancelled'
    elseif redis.call('ZSCORE', K_LEASE, id) then
        redis.call('SADD', K_CANCELLED, id)
        marked = marked + 1
        out[i - 2] = 'marked'
    elseif redis.call('HGET', K_JOB, id) == '' then
        out[i - 2] = 'done'
    else
        out[i - 2] = 'unknown'
    end
end
if cancelled > 0 then count('cancelled', cancelled) end
if marked > 0 then count('cancelMarked', marked) end
return out
