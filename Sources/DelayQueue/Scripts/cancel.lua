-- Cancels one or more jobs of ONE shard. ARGV: now, done retention ms, then the job ids. Returns per job the
-- outcome of `cancel_job` (lifecycle.lua).
-- Users' pending sets are not touched: cancel_up_to skips and removes entries of jobs that are gone.
local now, retention = now_ms(ARGV[1]), tonumber(ARGV[2])
local out, cancelled, marked = {}, 0, 0
for i = 3, #ARGV do
    local outcome = cancel_job(ARGV[i], now, retention)
    if outcome == 'cancelled' then cancelled = cancelled + 1 elseif outcome == 'marked' then marked = marked + 1 end
    out[i - 2] = outcome
end
count_cancels(cancelled, marked)
return out
