-- Settles claimed jobs of ONE shard for the holders of their lease tokens.
-- KEYS[8...]: per job, in job order, its user's pending set and its notification's record (both guard the job), and
-- the set of devices it reached (the push worker's).
-- ARGV: now, max attempts, done retention ms, guard ms, then per job: id, token,
--       action ('ack' | 'drop' | 'retry' | 'dead' | 'release' | 'extend'), delay (retry, release) or lease ms
--       (extend), error text.
-- Returns per job its outcome; 'stale' when the token is not the job's current one (the lease expired and
-- someone else holds it).
-- A job that ends here (sent, or dropped because it was cancelled) leaves its user's pending set in this step; a
-- job that waits again (retry, release), runs on (extend) or becomes a dead letter stays there, so an ack can
-- still cancel it, and its guards are kept alive for as long as it may still be sent from now on (a late claim,
-- a long Retry-After or a long send must not outlive them).
local now, maxAttempts, retention, guard = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out, acked, cancelled, stale = {}, 0, 0, 0

local function settle(id, token, action, ms, reason, pending, record, sent)
    if redis.call('HGET', K_JOB, id .. '|t') ~= token then
        -- An extension that lost the race with its own job's settle is no sign of a lost lease: not counted.
        if action ~= 'extend' then stale = stale + 1 end
        return 'stale'
    end
    if action == 'extend' then
        redis.call('ZADD', K_LEASE, 'XX', now + ms, id)
        keep_alive(pending, ms + guard)
        keep_alive(record, ms + guard)
        keep_alive(sent, ms + guard)
        return 'extended'
    end
    local wasCancelled = redis.call('SREM', K_CANCELLED, id) == 1
    if action == 'ack' or action == 'drop' or wasCancelled then
        redis.call('ZREM', K_LEASE, id)
        redis.call('ZREM', pending, id)
        redis.call('DEL', sent)
        finish(id, now, retention)
        -- An ack after a cancel means the send had begun before the cancel: it was sent, and counts so.
        if action == 'ack' then
            acked = acked + 1
            return 'acked'
        end
        cancelled = cancelled + 1
        return 'cancelled'
    end
    keep_alive(pending, ms + guard)
    keep_alive(record, ms + guard)
    keep_alive(sent, ms + guard)
    if action == 'release' then
        redis.call('ZREM', K_LEASE, id)
        redis.call('HDEL', K_JOB, id .. '|t')
        redis.call('HINCRBY', K_JOB, id .. '|a', -1)
        redis.call('ZADD', K_DUE, now + ms, id)
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
end

local job = 0
for i = 5, #ARGV, 5 do
    job = job + 1
    out[job] = settle(ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4], KEYS[5 + 3 * job],
        KEYS[6 + 3 * job], KEYS[7 + 3 * job])
end
if acked > 0 then count('acked', acked) end
if cancelled > 0 then count('cancelled', cancelled) end
if stale > 0 then count('staleSettles', stale) end
return out
