-- Retracts a notification in ONE shard: marks its record retracted (creating the mark when this shard has no
-- record yet, so a retried ingest that reaches this shard later schedules no push here either) and cancels the
-- push jobs of its recipients here. Prepended with the delay queue's prelude and helpers.
-- KEYS: 1..7 the shard's queue keys, 8 the notification's record in this shard, then the pending sets of the
--       recipients the caller read from the record (ARGV 6...), in the same order.
-- ARGV: 1 now, 2 done retention ms, 3 notification id, 4 record TTL ms (at least), 5 sender ('' for an admin: no
--       owner is recorded then), then user ids.
-- Returns {recipients, cancelled, marked, done, unknown}.
local record, notification = KEYS[8], ARGV[3]
local now, retention = now_ms(ARGV[1]), tonumber(ARGV[2])
redis.call('HSET', record, '!', '1')
if ARGV[5] ~= '' then redis.call('HSETNX', record, '$', ARGV[5]) end
keep_alive(record, tonumber(ARGV[4]))
local pendingOf = {}
for i = 6, #ARGV do pendingOf[ARGV[i]] = KEYS[3 + i] end
local fields = redis.call('HKEYS', record)
local tally = { cancelled = 0, marked = 0, done = 0, unknown = 0 }
local recipients = 0
for _, user in ipairs(fields) do
    if user ~= '#' and user ~= '!' and user ~= '$' then
        recipients = recipients + 1
        -- A recipient added since the caller read the record has no declared pending key: its job is cancelled
        -- all the same, and its pending entry goes when that set is next acked or expires.
        local outcome = cancel_job(notification .. '/' .. user, now, retention, pendingOf[user])
        tally[outcome] = tally[outcome] + 1
    end
end
count_cancels(tally.cancelled, tally.marked)
return {recipients, tally.cancelled, tally.marked, tally.done, tally.unknown}
