-- A consumer's heartbeat. KEYS[1]: the consumers set. ARGV: consumer id, TTL ms, now, 'leave' to deregister.
-- Returns the live consumers.
local set, id, ttl = KEYS[1], ARGV[1], tonumber(ARGV[2])
local now = now_ms(ARGV[3])
if ARGV[4] == 'leave' then
    redis.call('ZREM', set, id)
else
    redis.call('ZADD', set, now + ttl, id)
end
redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
return redis.call('ZRANGE', set, 0, -1)
