-- ARGV: jobId, now, done retention ms. Returns the outcome:
-- 'cancelled' (was waiting: never sent), 'marked' (already claimed: the worker drops it before sending),
-- 'done' (already sent or cancelled), 'unknown'.
local id = ARGV[1]
local now, retention = now_ms(ARGV[2]), tonumber(ARGV[3])
if redis.call('ZSCORE', K_DUE, id) or redis.call('ZSCORE', K_DEAD, id) then
    finish(id, now, retention)
    count('cancelled')
    return 'cancelled'
end
if redis.call('ZSCORE', K_LEASE, id) then
    redis.call('SADD', K_CANCELLED, id)
    if K_PENDING then redis.call('ZREM', K_PENDING, id) end
    count('cancelMarked')
    return 'marked'
end
if K_PENDING then redis.call('ZREM', K_PENDING, id) end
if redis.call('ZSCORE', K_DONE, id) then return 'done' end
return 'unknown'
