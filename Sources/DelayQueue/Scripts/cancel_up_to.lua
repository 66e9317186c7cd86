-- Cancels the user's pending jobs whose event lies in given ranges of inbox positions: an ack "up to" an id is
-- one range from '-inf', an ack of single ids one range per id. KEYS[8]: the user's pending set.
-- ARGV: now, done retention ms, budget, then pairs of (lowest, highest) pending score.
-- Does at most `budget` jobs per call, so one call holds Redis briefly whatever the set's size; the caller calls
-- again while `more` is 1 (every job handled leaves the set, so each call starts where the last one ended).
-- Returns {cancelled, marked, done, unknown, more}.
local pending = KEYS[8]
local now, retention, budget = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tally = { cancelled = 0, marked = 0, done = 0, unknown = 0 }
local more = 0
for i = 4, #ARGV, 2 do
    if budget <= 0 then
        more = 1
        break
    end
    local ids = redis.call('ZRANGEBYSCORE', pending, ARGV[i], ARGV[i + 1], 'LIMIT', 0, budget)
    for _, id in ipairs(ids) do
        local outcome = cancel_job(id, now, retention, nil)
        tally[outcome] = tally[outcome] + 1
    end
    -- `budget` is at most a few hundred, well below Lua's unpack limit (~8,000).
    if #ids > 0 then redis.call('ZREM', pending, unpack(ids)) end
    budget = budget - #ids
    if budget <= 0 then more = 1 end
end
count_cancels(tally.cancelled, tally.marked)
return {tally.cancelled, tally.marked, tally.done, tally.unknown, more}
