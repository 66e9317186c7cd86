-- Settles a claimed job for the holder of its lease token.
-- ARGV: jobId, token, action ('ack' | 'retry' | 'dead' | 'release' | 'extend'), now, delay or lease ms,
--       error text, max attempts, done retention ms.
-- Returns 'stale' when the token is not the job's current one (the lease expired and someone else holds it).
local id, token, action = ARGV[1], ARGV[2], ARGV[3]
local now, ms, reason = now_ms(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local maxAttempts, retention = tonumber(ARGV[7]), tonumber(ARGV[8])

if redis.call('HGET', K_JOB, id .. '|t') ~= token then
    count('staleSettles')
    return 'stale'
end
if action == 'extend' then
    redis.call('ZADD', K_LEASE, 'XX', now + ms, id)
    return 'extended'
end
local wasCancelled = redis.call('SREM', K_CANCELLED, id) == 1
if action == 'ack' then
    redis.call('ZREM', K_LEASE, id)
    finish(id, now, retention)
    count('acked')
    return 'acked'
end
if wasCancelled then
    redis.call('ZREM', K_LEASE, id)
    finish(id, now, retention)
    count('cancelled')
    return 'cancelled'
end
if action == 'release' then
    redis.call('ZREM', K_LEASE, id)
    redis.call('HDEL', K_JOB, id .. '|t')
    redis.call('HINCRBY', K_JOB, id .. '|a', -1)
    redis.call('ZADD', K_DUE, now, id)
    count('released')
    return 'released'
end
if action == 'dead' or tonumber(redis.call('HGET', K_JOB, id .. '|a') or '0') >= maxAttempts then
    bury(id, now, reason)
    return 'dead'
end
redis.call('ZREM', K_LEASE, id)
redis.call('HDEL', K_JOB, id .. '|t')
redis.call('HSET', K_JOB, id .. '|e', reason)
redis.call('ZADD', K_DUE, now + ms, id)
count('retried')
return 'retried'
