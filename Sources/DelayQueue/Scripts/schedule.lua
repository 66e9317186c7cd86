-- ARGV: jobId, payload, mode ('in' | 'at'), delay or due time in ms, now, pending score ('' = none),
--       pending TTL ms, wake channel, shard
local id, payload, mode = ARGV[1], ARGV[2], ARGV[3]
local now = now_ms(ARGV[5])
local due = tonumber(ARGV[4])
if mode == 'in' then due = now + due end

if redis.call('HEXISTS', K_JOB, id) == 1 then
    count('duplicates')
    return {0, 'exists'}
end
if redis.call('ZSCORE', K_DONE, id) then
    count('duplicates')
    return {0, 'done'}
end
redis.call('HSET', K_JOB, id, payload)
redis.call('ZADD', K_DUE, due, id)
if ARGV[6] ~= '' and K_PENDING then
    redis.call('ZADD', K_PENDING, ARGV[6], id)
    redis.call('PEXPIRE', K_PENDING, ARGV[7])
end
count('scheduled')
-- Wake sleeping consumers only when this job is the new head of the shard: they sleep until the old head.
local head = redis.call('ZRANGE', K_DUE, 0, 0)
if head[1] == id then
    redis.call('PUBLISH', ARGV[8], ARGV[9] .. ' ' .. due)
end
return {1, due}
