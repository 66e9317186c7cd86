-- Settles a claimed job for the holder of its lease token.
-- ARGV: jobId, token, action ('ack' | 'retry' | 'dead' | 'release' | 'extend'), now, delay or lease ms,
--       error text, max attempts, done retention ms.
-- Returns 'stale' when the token is not the job's current one (the lease expired and someone else holds it).
local id, token, action = ARGV[1], ARGV[2], ARGV[3]
local now, ms, reason = now_ms(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local maxAttempts, retention = tonumber(ARGV[7]), tonumber(ARGV[8])

if redis.call('HGET', K_TOKEN, id) ~= token then
    count('staleSettles')
    return 'stale'
end
if action == 'extend' then
    redis.call('ZADD', K_LEASE, 'XX', now + ms, id)
    return 'extended'
end
if action == 'ack' then
    finish(id, now, retention)
    count('acked')
    return 'acked'
end
if redis.call('SISMEMBER', K_CANCELLED, id) == 1 then
    finish(id, now, retention)
    count('cancelled')
    return 'cancelled'
end
if action == 'release' then
    redis.call('ZREM', K_LEASE, id)
    redis.call('HDEL', K_TOKEN, id)
    redis.call('HINCRBY', K_ATTEMPTS, id, -1)
    redis.call('ZADD', K_DUE, now, id)
    count('released')
    return 'released'
end
redis.call('HSET', K_ERROR, id, reason)
if action == 'dead' or tonumber(redis.call('HGET', K_ATTEMPTS, id) or '0') >= maxAttempts then
    bury(id, now, reason)
    return 'dead'
end
redis.call('ZREM', K_LEASE, id)
redis.call('HDEL', K_TOKEN, id)
redis.call('ZADD', K_DUE, now + ms, id)
count('retried')
return 'retried'
