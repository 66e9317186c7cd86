-- Takes back expired leases, then leases up to `max` due jobs. (Tombstones and old dead letters are trimmed by
-- trim.lua, which every process runs, not here: a deployment without consumers must not grow either.)
-- ARGV: now, max, lease ms, max attempts, done retention ms.
-- Returns {now, next due (-1: none), next lease deadline (-1: none), then per job: id, payload, attempts, token, due}.
local now, max, lease = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local maxAttempts, retention = tonumber(ARGV[4]), tonumber(ARGV[5])

-- A worker that died (or stalled past its lease) loses its jobs: back to due now, or dead after the last try.
local expired = redis.call('ZRANGEBYSCORE', K_LEASE, '-inf', now, 'LIMIT', 0, max)
local cancelled = 0
for _, id in ipairs(expired) do
    if redis.call('SREM', K_CANCELLED, id) == 1 then
        redis.call('ZREM', K_LEASE, id)
        finish(id, now, retention)
        cancelled = cancelled + 1
    elseif tonumber(redis.call('HGET', K_JOB, id .. '|a') or '0') >= maxAttempts then
        bury(id, now, 'lease expired on the last attempt')
    else
        redis.call('ZREM', K_LEASE, id)
        redis.call('HDEL', K_JOB, id .. '|t')
        redis.call('ZADD', K_DUE, now, id)
    end
end
if #expired > 0 then count('expiredLeases', #expired) end
if cancelled > 0 then count('cancelled', cancelled) end

local out = {now, -1, -1}
local due = redis.call('ZRANGEBYSCORE', K_DUE, '-inf', now, 'WITHSCORES', 'LIMIT', 0, max)
if #due > 0 then
    local ids, scores = {}, {}
    for i = 1, #due, 2 do
        ids[#ids + 1] = due[i]
        scores[#scores + 1] = due[i + 1]
    end
    redis.call('ZREM', K_DUE, unpack(ids))
    local lastToken = redis.call('HINCRBY', K_STATS, 'leaseSeq', #ids)
    local payloads = redis.call('HMGET', K_JOB, unpack(ids))
    local leases, tokens = {}, {}
    for j, id in ipairs(ids) do
        local attempts = redis.call('HINCRBY', K_JOB, id .. '|a', 1)
        local token = lastToken - #ids + j
        leases[#leases + 1] = now + lease
        leases[#leases + 1] = id
        tokens[#tokens + 1] = id .. '|t'
        tokens[#tokens + 1] = token
        out[#out + 1] = id
        out[#out + 1] = payloads[j] or ''
        out[#out + 1] = attempts
        out[#out + 1] = token
        out[#out + 1] = scores[j]
    end
    redis.call('ZADD', K_LEASE, unpack(leases))
    redis.call('HSET', K_JOB, unpack(tokens))
    count('claimed', #ids)
end

local head = redis.call('ZRANGE', K_DUE, 0, 0, 'WITHSCORES')
if head[2] then out[2] = tonumber(head[2]) end
local leaseHead = redis.call('ZRANGE', K_LEASE, 0, 0, 'WITHSCORES')
if leaseHead[2] then out[3] = tonumber(leaseHead[2]) end
return out
