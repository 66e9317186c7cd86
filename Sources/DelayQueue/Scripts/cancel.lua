-- Cancels one or more jobs of ONE shard. KEYS[8...]: the pending set of each job's user, in job order.
-- ARGV: now, done retention ms, then the job ids. Returns per job the outcome of `cancel_job` (lifecycle.lua).
local now, retention = now_ms(ARGV[1]), tonumber(ARGV[2])
local out, cancelled, marked = {}, 0, 0
for i = 3, #ARGV do
    local outcome = cancel_job(ARGV[i], now, retention, KEYS[5 + i])
    if outcome == 'cancelled' then cancelled = cancelled + 1 elseif outcome == 'marked' then marked = marked + 1 end
    out[i - 2] = outcome
end
count_cancels(cancelled, marked)
return out
