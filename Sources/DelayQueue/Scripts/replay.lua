-- Moves dead letters back to due now, with fresh attempts. ARGV: jobId ('' = all, up to limit), now, limit.
local now, limit = now_ms(ARGV[2]), tonumber(ARGV[3])
local ids
if ARGV[1] ~= '' then
    ids = {ARGV[1]}
else
    ids = redis.call('ZRANGE', K_DEAD, 0, limit - 1)
end
local replayed = 0
for _, id in ipairs(ids) do
    if redis.call('ZREM', K_DEAD, id) == 1 then
        redis.call('HDEL', K_JOB, id .. '|a', id .. '|e')
        redis.call('ZADD', K_DUE, now, id)
        replayed = replayed + 1
    end
end
if replayed > 0 then count('replayed', replayed) end
return replayed
