-- Takes back expired leases, then leases up to `max` due jobs.
-- ARGV: now, max, lease ms, max attempts, done retention ms.
-- Returns {now, next due (-1: none), next lease deadline (-1: none), then per job: id, payload, attempts, token, due}.
local now, max, lease = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local maxAttempts, retention = tonumber(ARGV[4]), tonumber(ARGV[5])

if retention > 0 then
    redis.call('ZREMRANGEBYSCORE', K_DONE, '-inf', now - retention)
end

-- A worker that died (or stalled past its lease) loses its jobs: back to due now, or dead after the last try.
local expired = redis.call('ZRANGEBYSCORE', K_LEASE, '-inf', now, 'LIMIT', 0, max)
for _, id in ipairs(expired) do
    count('expiredLeases')
    if redis.call('SISMEMBER', K_CANCELLED, id) == 1 then
        finish(id, now, retention)
        count('cancelled')
    elseif tonumber(redis.call('HGET', K_ATTEMPTS, id) or '0') >= maxAttempts then
        bury(id, now, 'lease expired on the last attempt')
    else
        redis.call('ZREM', K_LEASE, id)
        redis.call('HDEL', K_TOKEN, id)
        redis.call('ZADD', K_DUE, now, id)
    end
end

local out = {now, -1, -1}
local due = redis.call('ZRANGEBYSCORE', K_DUE, '-inf', now, 'WITHSCORES', 'LIMIT', 0, max)
local claimed = 0
for i = 1, #due, 2 do
    local id, dueAt = due[i], due[i + 1]
    redis.call('ZREM', K_DUE, id)
    local attempts = redis.call('HINCRBY', K_ATTEMPTS, id, 1)
    local token = redis.call('HINCRBY', K_STATS, 'leaseSeq', 1)
    redis.call('ZADD', K_LEASE, now + lease, id)
    redis.call('HSET', K_TOKEN, id, token)
    local payload = redis.call('HGET', K_JOB, id) or ''
    out[#out + 1] = id
    out[#out + 1] = payload
    out[#out + 1] = attempts
    out[#out + 1] = token
    out[#out + 1] = dueAt
    claimed = claimed + 1
end
if claimed > 0 then count('claimed', claimed) end

local head = redis.call('ZRANGE', K_DUE, 0, 0, 'WITHSCORES')
if head[2] then out[2] = tonumber(head[2]) end
local leaseHead = redis.call('ZRANGE', K_LEASE, 0, 0, 'WITHSCORES')
if leaseHead[2] then out[3] = tonumber(leaseHead[2]) end
return out
