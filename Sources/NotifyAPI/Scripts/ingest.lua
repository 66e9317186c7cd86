-- Ingests one notification for the recipients of ONE shard (the API groups recipients by shard). Per recipient,
-- atomically: append to the inbox, record the event id, publish it live, and (unless preferences suppress it)
-- schedule the push job and record it as pending. Prepended with the delay queue's prelude and helpers.
-- KEYS: 1..7 the shard's queue keys, 8 the notification's record in this shard, then per recipient: inbox,
--       pending set, preferences.
-- ARGV: 1 now, 2 guard ms (how long records outlive the jobs they guard), 3 wake channel, 4 shard, 5 wake horizon
--       ms, 6 notification id, 7 record TTL ms (the idempotency window), 8 inbox max length, 9 inbox TTL ms,
--       10 event members (JSON), 11 push members (JSON; '' = inbox only), 12 requested delay ms ('' = not given),
--       13 default delay ms, 14 type, 15 room ('' = none), 16 request fingerprint, 17 live channel prefix,
--       18 most pending jobs per user, 19 sender (the API key's name), then the recipients' user ids.
-- Returns per recipient two values: the event id and the push outcome ('scheduled', 'deferred' (quiet hours),
-- 'muted', 'off', 'retracted', 'limited' (the user has too many pushes pending) or 'duplicate' when this
-- recipient already had this notification).
-- Errors: 'CONFLICT ...' when the notification id was used with a different request.
local now, guard, horizon = now_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
local maxPending = tonumber(ARGV[18])
local record, notification = KEYS[8], ARGV[6]
local members, push = ARGV[10], ARGV[11]
local requestedDelay, defaultDelay = ARGV[12], tonumber(ARGV[13])
local typeName, room, liveprefix = ARGV[14], ARGV[15], ARGV[17]

local seen = redis.call('HMGET', record, '#', '!')
if seen[1] and seen[1] ~= ARGV[16] then
    return redis.error_reply('CONFLICT notification ' .. notification .. ' was sent before with another request')
end
local retracted = seen[2] ~= false
if not seen[1] then redis.call('HSET', record, '#', ARGV[16], '$', ARGV[19]) end

-- A pending score exact in a double: ms * 1000 + min(seq, 999), built as text (tostring would round).
local function pending_score(id)
    local dash = string.find(id, '-', 1, true)
    local seq = math.min(tonumber(string.sub(id, dash + 1)), 999)
    return string.sub(id, 1, dash - 1) .. string.format('%03d', seq)
end

local function muted(value)
    if not value then return false end
    local untilMs = tonumber(value)
    return untilMs == 0 or untilMs > now
end

-- Quiet hours: 'start end' in minutes of the local day; offsets: 'fromMs:offsetMinutes,...' ascending (the API
-- precomputes the time zone's offsets, so daylight saving needs no tz database here).
-- The offset in force at `t` (minutes), and since when (ms).
local function offset_at(offsets, t)
    local offset, since = 0, 0
    for from, minutes in string.gmatch(offsets, '(%-?%d+):(%-?%d+)') do
        if tonumber(from) <= t then
            offset, since = tonumber(minutes), tonumber(from)
        else
            break
        end
    end
    return offset, since
end

-- Returns the end of the quiet period containing `due`, or nil.
local function quiet_until(quiet, offsets, due)
    if not quiet or not offsets then return nil end
    local qs, qe = string.match(quiet, '^(%d+) (%d+)$')
    qs, qe = tonumber(qs), tonumber(qe)
    if not qs or qs == qe then return nil end
    local offset = offset_at(offsets, due)
    local localMinute = math.floor((due + offset * 60000) / 60000)
    local minute = localMinute % 1440
    local inside
    if qs < qe then inside = minute >= qs and minute < qe else inside = minute >= qs or minute < qe end
    if not inside then return nil end
    -- The end is a wall-clock time: when a daylight-saving change falls inside the window, the offset in force at
    -- the end differs from the one at `due`, so convert the end with its own offset.
    local localEnd = (localMinute + (qe - minute) % 1440) * 60000
    local endUtc = localEnd - offset * 60000
    local endOffset, jump = offset_at(offsets, endUtc)
    if endOffset ~= offset then
        endUtc = localEnd - endOffset * 60000
        -- The end's wall-clock time does not exist (the clocks jumped over it): quiet hours end at the jump.
        if offset_at(offsets, endUtc) ~= endOffset then endUtc = jump end
    end
    return endUtc
end

local out, scheduled, limited, earliest, latest = {}, 0, 0, nil, nil
-- One HMGET for every recipient's earlier event (a retry) and one HSET for the new ones, instead of a call each:
-- at most 256 recipients per call, well within unpack's limit.
local recipients = {}
for i = 20, #ARGV do recipients[#recipients + 1] = ARGV[i] end
local known = redis.call('HMGET', record, unpack(recipients))
local written = {}
local n = 0
for i = 20, #ARGV do
    local user = ARGV[i]
    local base = 8 + n * 3
    n = n + 1
    local inbox, pending, prefs = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
    local existing = known[n]
    if existing then
        out[#out + 1] = existing
        out[#out + 1] = 'duplicate'
    else
        local id = redis.call('XADD', inbox, 'MAXLEN', '~', ARGV[8], '*', 'e', members)
        redis.call('PEXPIRE', inbox, ARGV[9])
        written[#written + 1] = user
        written[#written + 1] = id
        redis.call('PUBLISH', liveprefix .. user, id .. ' ' .. members)
        local outcome = 'off'
        if retracted then
            outcome = 'retracted'
        elseif push ~= '' then
            local p = redis.call('HMGET', prefs, 'delay', 'mute:room:' .. room, 'mute:type:' .. typeName, 'quiet',
                'quiet_offsets')
            if (room ~= '' and muted(p[2])) or muted(p[3]) then
                outcome = 'muted'
            else
                local delay = tonumber(requestedDelay) or tonumber(p[1]) or defaultDelay
                local due = now + delay
                outcome = 'scheduled'
                local deferred = quiet_until(p[4], p[5], due)
                if deferred then
                    due = deferred
                    outcome = 'deferred'
                end
                local payload = '{"event_id":"' .. id .. '","due_ms":' .. due .. ',' .. push .. '}'
                local result = schedule_job(notification .. '/' .. user, payload, due, now, pending, pending_score(id),
                    guard, maxPending)
                if result == 'new' then
                    scheduled = scheduled + 1
                    if earliest == nil or due < earliest then earliest = due end
                    if latest == nil or due > latest then latest = due end
                elseif result == 'limited' then
                    outcome = 'limited'
                    limited = limited + 1
                else
                    -- The job exists already although this recipient had no entry in the record (the record
                    -- expired): nothing new was scheduled.
                    outcome = 'duplicate'
                end
            end
        end
        out[#out + 1] = id
        out[#out + 1] = outcome
    end
end
if #written > 0 then redis.call('HSET', record, unpack(written)) end
-- The record lets a retract find the jobs: it must outlive the latest of them, retries and dead letters included.
keep_alive_new(record, math.max(tonumber(ARGV[7]), latest and (latest - now + guard) or 0),
    not seen[1] and not seen[2])
if scheduled > 0 then count('scheduled', scheduled) end
if limited > 0 then count('limited', limited) end
wake_if_leading(earliest, now, horizon, ARGV[3], ARGV[4])
return out
