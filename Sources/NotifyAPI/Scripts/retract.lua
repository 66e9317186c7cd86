-- Retracts a notification in ONE shard: cancels the push jobs of its recipients there and marks the record so a
-- late (retried) ingest of it schedules no push. Prepended with the delay queue's prelude and helpers.
-- KEYS: 1..7 the shard's queue keys, 8 the notification's record in this shard.
-- ARGV: now, done retention ms, notification id.
-- Returns {recipients, cancelled, marked, done, unknown}; recipients = -1 when the shard has no record.
local record, notification = KEYS[8], ARGV[3]
if redis.call('EXISTS', record) == 0 then return {-1, 0, 0, 0, 0} end
local now, retention = now_ms(ARGV[1]), tonumber(ARGV[2])
redis.call('HSET', record, '!', '1')
local fields = redis.call('HKEYS', record)
local tally = { cancelled = 0, marked = 0, done = 0, unknown = 0 }
local recipients = 0
for _, user in ipairs(fields) do
    if user ~= '#' and user ~= '!' then
        recipients = recipients + 1
        local outcome = cancel_job(notification .. '/' .. user, now, retention)
        tally[outcome] = tally[outcome] + 1
    end
end
count_cancels(tally.cancelled, tally.marked)
return {recipients, tally.cancelled, tally.marked, tally.done, tally.unknown}
