-- Cluster-wide presence, kept in Redis by every gateway instance. One
-- script, loaded once and run with EVALSHA, so that each change is atomic
-- across the instances that race on the same user.
--
-- A "holder" is one worker of one instance ("<instance>#<worker>"). Keys,
-- under the prefix P (ARGV[2]):
--   P.."holders"  ZSET  holder -> the Redis time (ms) its liveness lapses
--   P.."h:"..H    HASH  user -> {"n": sessions, "g": [guilds], "c": census}
--                       what holder H reported last; n = 0 marks the
--                       offline grace H owns for that user
--   P.."u:"..U    HASH  holder -> sessions of U there; "~" -> the pending
--                       offline {"h": holder that owns it, "g": [guilds]}
--   P.."g:"..G    HASH  user -> holders whose sessions of U joined G
--   P.."gone:"..U       U was announced offline because its holder went
--                       away (reaped, or missing from a census); for an
--                       hour, so that registering U again says online
--
-- Every answer is a JSON string that gatewayd parses. The keys are built
-- here rather than passed in KEYS, so this script needs one Redis, not a
-- cluster.

local op, P = ARGV[1], ARGV[2]

-- The sessions of U on every holder (the pending offline is not one).
local function total(uk)
    local sum, t = 0, redis.call('HGETALL', uk)
    for i = 1, #t, 2 do
        if t[i] ~= '~' then sum = sum + tonumber(t[i + 1]) end
    end
    return sum
end

local function set_of(list)
    local s = {}
    for _, x in ipairs(list) do s[x] = true end
    return s
end

-- Moves U's entries in the guild hashes from the guilds in `old` to those
-- in `new`.
local function move_guilds(U, old, new)
    local was, now = set_of(old), set_of(new)
    for _, g in ipairs(new) do
        if not was[g] then redis.call('HINCRBY', P .. 'g:' .. g, U, 1) end
    end
    for _, g in ipairs(old) do
        if not now[g] and redis.call('HINCRBY', P .. 'g:' .. g, U, -1) <= 0 then
            redis.call('HDEL', P .. 'g:' .. g, U)
        end
    end
end

local NONE = {t = 'none'}

-- A holder H reports the sessions of U it holds now: n, and the union of
-- their guilds (JSON g). The answer says what the cluster's total did:
-- "online" when U had no session anywhere and no offline pending, "grace"
-- when this was the last session anywhere (the reporter owns the offline
-- and settles it after the grace), else "none". A census report (census
-- "1") registers again what an instance held while Redis was away: online
-- only for a user announced offline meanwhile, as a reaped one was. c tags
-- the record with the census it belongs to.
local function change(H, U, n, g, c, census)
    local hk, uk = P .. 'h:' .. H, P .. 'u:' .. U
    local old = redis.call('HGET', hk, U)
    local oldg = old and cjson.decode(old).g or {}
    local newg = n > 0 and cjson.decode(g) or {}
    local before = total(uk)
    move_guilds(U, oldg, newg)
    if n > 0 then
        redis.call('HSET', hk, U, cjson.encode({n = n, g = newg, c = c}))
        redis.call('HSET', uk, H, n)
    else
        redis.call('HDEL', hk, U)
        redis.call('HDEL', uk, H)
    end
    local after = total(uk)
    if before == 0 and after > 0 then
        if redis.call('HDEL', uk, '~') == 1 then return NONE end
        local was_gone = redis.call('DEL', P .. 'gone:' .. U) == 1
        if census == '1' and not was_gone then return NONE end
        return {t = 'online', g = newg}
    end
    if before > 0 and after == 0 then
        redis.call('HSET', uk, '~', cjson.encode({h = H, g = oldg}))
        redis.call('HSET', hk, U, cjson.encode({n = 0, g = {}, c = c}))
        return {t = 'grace'}
    end
    return NONE
end

-- The grace H started for U is over: offline if H still owns the pending
-- offline and nobody came back. With lapse "1" (a grace begun while Redis
-- was away, so never recorded here) offline when U has no session and no
-- pending offline at all.
local function settle(H, U, lapse)
    local hk, uk = P .. 'h:' .. H, P .. 'u:' .. U
    local rec = redis.call('HGET', hk, U)
    if rec and cjson.decode(rec).n == 0 then redis.call('HDEL', hk, U) end
    local p = redis.call('HGET', uk, '~')
    if p then
        local d = cjson.decode(p)
        if d.h ~= H or total(uk) > 0 then return NONE end
        redis.call('DEL', uk)
        return {t = 'offline', g = d.g}
    end
    if lapse == '1' and total(uk) == 0 then return {t = 'offline'} end
    return NONE
end

-- U is offline now because its holder went away: appended to out.
local function gone(U, guilds, out)
    redis.call('DEL', P .. 'u:' .. U)
    redis.call('SET', P .. 'gone:' .. U, '1', 'PX', 3600000)
    out[#out + 1] = {u = U, g = guilds}
end

-- Removes what holder D said of U (rec); when that leaves U with no
-- session anywhere, U is offline now, with no grace.
local function drop(D, U, rec, out)
    local r = cjson.decode(rec)
    local uk = P .. 'u:' .. U
    move_guilds(U, r.g, {})
    redis.call('HDEL', P .. 'h:' .. D, U)
    redis.call('HDEL', uk, D)
    if total(uk) > 0 then return end
    local p = redis.call('HGET', uk, '~')
    if r.n > 0 then
        gone(U, r.g, out)
    elseif p and cjson.decode(p).h == D then
        gone(U, cjson.decode(p).g, out)
    end
end

-- An instance's heartbeat: its holders' liveness is pushed ARGV[3] ms
-- ahead, then every holder whose liveness has lapsed is reaped (at most 64
-- a call). Answers the users that went offline with them.
local function beat()
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local ttl, zk, out = tonumber(ARGV[3]), P .. 'holders', {}
    for i = 4, #ARGV do redis.call('ZADD', zk, now + ttl, ARGV[i]) end
    local dead = redis.call('ZRANGEBYSCORE', zk, '-inf', '(' .. now,
                            'LIMIT', 0, 64)
    for _, D in ipairs(dead) do
        local recs = redis.call('HGETALL', P .. 'h:' .. D)
        for i = 1, #recs, 2 do drop(D, recs[i], recs[i + 1], out) end
        redis.call('DEL', P .. 'h:' .. D)
        redis.call('ZREM', zk, D)
    end
    return cjson.encode(out)
end

-- The end of a census of holder H: what it did not report again (tagged
-- census) is gone. A pending offline of this run (its tag starts with
-- run) is left to the timer that settles it; one of an earlier run of the
-- instance has no timer and is settled now.
local function prune(H, run, census)
    local out = {}
    local recs = redis.call('HGETALL', P .. 'h:' .. H)
    for i = 1, #recs, 2 do
        local r = cjson.decode(recs[i + 1])
        local ours = string.sub(r.c, 1, #run) == run
        if r.c ~= census and not (r.n == 0 and ours) then
            drop(H, recs[i], recs[i + 1], out)
        end
    end
    return {t = 'gone', l = out}
end

-- What holders report, in the order it happened, many records a call:
-- "change" H U n g c census, "settle" H U lapse, or "prune" H run census.
-- Answers one result per record, in order.
local function batch()
    local out, i = {}, 3
    while i <= #ARGV do
        if ARGV[i] == 'change' then
            out[#out + 1] = change(ARGV[i + 1], ARGV[i + 2],
                                   tonumber(ARGV[i + 3]), ARGV[i + 4],
                                   ARGV[i + 5], ARGV[i + 6])
            i = i + 7
        elseif ARGV[i] == 'settle' then
            out[#out + 1] = settle(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
            i = i + 4
        else
            out[#out + 1] = prune(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
            i = i + 4
        end
    end
    return cjson.encode(out)
end

-- GET /presence: each user's status and session count.
local function users()
    local out = {}
    for i = 3, #ARGV do
        local uk = P .. 'u:' .. ARGV[i]
        local n = total(uk)
        local pending = redis.call('HEXISTS', uk, '~') == 1
        out[#out + 1] = {userId = ARGV[i], sessions = n,
                         status = (n > 0 or pending) and 'online' or 'offline'}
    end
    return cjson.encode(out)
end

-- GET /guilds/{id}/presence: how many members are online, and up to
-- ARGV[4] of them.
local function guild()
    local gk, limit = P .. 'g:' .. ARGV[3], tonumber(ARGV[4])
    local n, ids = redis.call('HLEN', gk), {}
    if limit > 0 and n > 0 then
        if n <= limit then
            ids = redis.call('HKEYS', gk)
        else
            ids = redis.call('HRANDFIELD', gk, limit)
        end
    end
    return cjson.encode({online = n, userIds = ids})
end

local ops = {batch = batch, beat = beat, users = users, guild = guild}
return ops[op]()
