-- Cancels the user's pending jobs whose event is at or before a position. KEYS[8]: the user's pending set.
-- ARGV: highest pending score, now, done retention ms, limit. Returns {cancelled, marked, done, unknown}.
local pending = KEYS[8]
local now, retention, limit = now_ms(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', pending, '-inf', ARGV[1], 'LIMIT', 0, limit)
local cancelled, marked, done, unknown = 0, 0, 0, 0
for _, id in ipairs(ids) do
    if redis.call('ZREM', K_DUE, id) == 1 or redis.call('ZREM', K_DEAD, id) == 1 then
        finish(id, now, retention)
        cancelled = cancelled + 1
    elseif redis.call('ZSCORE', K_LEASE, id) then
        redis.call('SADD', K_CANCELLED, id)
        marked = marked + 1
    elseif redis.call('HGET', K_JOB, id) == '' then
        done = done + 1
    else
        unknown = unknown + 1
    end
end
if #ids > 0 then redis.call('ZREM', pending, unpack(ids)) end
if cancelled > 0 then count('cancelled', cancelled) end
if marked > 0 then count('cancelMarked', marked) end
return {cancelled, marked, done, unknown}
