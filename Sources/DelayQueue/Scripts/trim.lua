-- Retention of ONE shard, step one: removes up to `limit` tombstones older than the done retention, and lists the
-- dead letters due to go (older than the dead retention, or beyond the per-shard bound; oldest first, at most
-- `limit`) for trim_dead.lua, which needs their users' pending sets declared as keys.
-- ARGV: now, done retention ms, dead retention ms, most dead letters, limit.
-- Returns {tombstones removed, more tombstones (1: call again), then per dead letter: id, score}.
local now, retention, deadRetention = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local maxDead, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {0, 0}
if retention > 0 then
    -- A tombstone blocks re-scheduling, so each id here still holds ''.
    local old = redis.call('ZRANGEBYSCORE', K_DONE, '-inf', now - retention, 'LIMIT', 0, limit)
    if #old > 0 then
        redis.call('HDEL', K_JOB, unpack(old))
        redis.call('ZREM', K_DONE, unpack(old))
    end
    out[1] = #old
    if #old == limit then out[2] = 1 end
end
-- Both criteria take the oldest first, so the dead letters to go are a prefix of the set.
local expired = redis.call('ZCOUNT', K_DEAD, '-inf', now - deadRetention)
local excess = redis.call('ZCARD', K_DEAD) - maxDead
local n = math.min(math.max(expired, excess), limit)
if n > 0 then
    local dead = redis.call('ZRANGE', K_DEAD, 0, n - 1, 'WITHSCORES')
    for _, value in ipairs(dead) do out[#out + 1] = value end
end
return out
