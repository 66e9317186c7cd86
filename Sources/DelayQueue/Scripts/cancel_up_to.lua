-- Cancels the user's pending jobs whose event is at or before a position.
-- ARGV: highest pending score, now, done retention ms, limit. Returns {cancelled, marked, done, unknown}.
local now, retention, limit = now_ms(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', K_PENDING, '-inf', ARGV[1], 'LIMIT', 0, limit)
local cancelled, marked, done, unknown = 0, 0, 0, 0
for _, id in ipairs(ids) do
    if redis.call('ZSCORE', K_DUE, id) or redis.call('ZSCORE', K_DEAD, id) then
        finish(id, now, retention)
        cancelled = cancelled + 1
    elseif redis.call('ZSCORE', K_LEASE, id) then
        redis.call('SADD', K_CANCELLED, id)
        marked = marked + 1
    elseif redis.call('ZSCORE', K_DONE, id) then
        done = done + 1
    else
        unknown = unknown + 1
    end
    redis.call('ZREM', K_PENDING, id)
end
if cancelled > 0 then count('cancelled', cancelled) end
if marked > 0 then count('cancelMarked', marked) end
return {cancelled, marked, done, unknown}
