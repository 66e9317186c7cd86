-- Cancels the user's pending jobs whose event lies in given ranges of inbox positions: an ack "up to" an id is
-- one range from '-inf', an ack of single ids one range per id. KEYS[8]: the user's pending set.
-- ARGV: now, done retention ms, limit, then pairs of (lowest, highest) pending score.
-- Returns {cancelled, marked, done, unknown}.
local pending = KEYS[8]
local now, retention, limit = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tally = { cancelled = 0, marked = 0, done = 0, unknown = 0 }
for i = 4, #ARGV, 2 do
    local ids = redis.call('ZRANGEBYSCORE', pending, ARGV[i], ARGV[i + 1], 'LIMIT', 0, limit)
    for _, id in ipairs(ids) do
        local outcome = cancel_job(id, now, retention)
        tally[outcome] = tally[outcome] + 1
    end
    if #ids > 0 then redis.call('ZREM', pending, unpack(ids)) end
end
count_cancels(tally.cancelled, tally.marked)
return {tally.cancelled, tally.marked, tally.done, tally.unknown}
