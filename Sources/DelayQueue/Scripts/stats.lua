-- ARGV: now. Returns {now, due now, due later, oldest due score (-1: none), in flight, expired leases,
-- dead, counters as a flat field/value list}.
local now = now_ms(ARGV[1])
local dueNow = redis.call('ZCOUNT', K_DUE, '-inf', now)
local later = redis.call('ZCOUNT', K_DUE, '(' .. now, '+inf')
local head = redis.call('ZRANGE', K_DUE, 0, 0, 'WITHSCORES')
local oldest = -1
if head[2] then oldest = tonumber(head[2]) end
return {now, dueNow, later, oldest, redis.call('ZCARD', K_LEASE), redis.call('ZCOUNT', K_LEASE, '-inf', now),
    redis.call('ZCARD', K_DEAD), redis.call('HGETALL', K_STATS)}
