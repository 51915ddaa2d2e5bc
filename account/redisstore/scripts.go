package redisstore

import "github.com/redis/go-redis/v9"

// luaBefore compares two stored times (see encTime): a < b, exactly, in two
// numeric parts that each fit a double.
const luaBefore = `
local function before(a, b)
  local a1, b1 = tonumber(string.sub(a, 1, 14)), tonumber(string.sub(b, 1, 14))
  if a1 ~= b1 then return a1 < b1 end
  return tonumber(string.sub(a, 15)) < tonumber(string.sub(b, 15))
end
`

// luaGroups writes groups of ARGV, from index argi: a count, then that
// many arguments (field/value pairs, or set members), which write(cmd,
// key) hands to cmd straight from ARGV (unpack of a range: no table is
// built, about 5 µs less of redis-server per signup than copying them
// into one first); an empty group writes nothing.
const luaGroups = `
local argi = 0
local function write(cmd, key)
  local n = tonumber(ARGV[argi])
  if n > 0 then redis.call(cmd, key, unpack(ARGV, argi + 1, argi + n)) end
  argi = argi + n + 1
end
`

// releaseLoc deletes an index key if it still holds our home.
// KEYS: loc. ARGV: home.
var releaseLoc = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

// addDevice writes a device and session of an existing, not banned
// account. KEYS: account, devices, device, session.
// ARGV: op, account id, device id, then groups device, session.
var addDevice = redis.NewScript(luaGroups + `
local op, acc, dev = ARGV[1], ARGV[2], ARGV[3]
local a = redis.call('HMGET', KEYS[1], 'id', 'banned')
if not a[1] or a[1] ~= acc then return 'notfound' end
local d = redis.call('HGET', KEYS[3], 'op')
if d then
  if d == op then return 'ok' end
  return 'exists'
end
if redis.call('EXISTS', KEYS[4]) > 0 then return 'exists' end
if a[2] == '1' then return 'banned' end
argi = 4
write('HSET', KEYS[3])
write('HSET', KEYS[4])
redis.call('SADD', KEYS[2], dev)
return 'ok'
`)

// refresh is the single-use step. KEYS: account, device, session.
// ARGV: op, counter, counter+1, now, idle cutoff ("" for none), grace
// until, successor, zero time, deadline (Unix microseconds by the Redis
// server's clock, "" for none), retry digest (hex, "" for none).
//
// The caller's deadline travels into the script: a script that runs after
// it (held by a slow network or a paused server while the caller already
// answered 503, "nothing changed") changes nothing and answers 'late'.
//
// The retry digests are compared with Lua's string equality, which is not
// constant time. That is acceptable: they are SHA-256 digests of retry ids
// of at least 128 random bits, so learning how many leading bytes of the
// stored digest a guess matches brings no id closer (a preimage would be
// needed). Sessions stored before retry ids have no retry_digest field:
// HMGET answers false, which never matches. retry_counter is the session
// counter the digest was stored at: a node from before retry ids advances
// without touching either field, and the digest it leaves behind must not
// answer for the token that advance spent.
var refresh = redis.NewScript(luaBefore + `
local op, cnt, cnt1, now, cutoff, graceUntil, succ, zero, deadline, retry =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
if deadline ~= '' then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000000 + tonumber(t[2]) > tonumber(deadline) then return {'late'} end
end
local s = redis.call('HMGET', KEYS[3], 'counter', 'ended', 'expires', 'last_used', 'grace_until', 'successor', 'op', 'retry_digest', 'retry_counter')
if not s[1] then return {'notfound'} end
local banned = redis.call('HGET', KEYS[1], 'banned')
local revoked = redis.call('HGET', KEYS[2], 'revoked')
if s[2] ~= zero or (revoked and revoked ~= zero) or banned == '1'
   or not before(now, s[3]) or (cutoff ~= '' and before(s[4], cutoff)) then
  return {'rejected'}
end
if cnt == s[1] then
  redis.call('HSET', KEYS[3], 'counter', cnt1, 'grace_until', graceUntil, 'successor', succ, 'last_used', now, 'op', op,
    'retry_digest', retry, 'retry_counter', cnt1)
  redis.call('HSET', KEYS[2], 'last_used', now)
  return {'advanced', succ}
end
if cnt1 == s[1] then
  if s[7] == op then return {'advanced', s[6]} end
  if before(now, s[5]) then return {'grace', s[6]} end
  if retry ~= '' and s[8] == retry and s[9] == cnt1 then
    redis.call('HSET', KEYS[3], 'last_used', now)
    redis.call('HSET', KEYS[2], 'last_used', now)
    return {'retried', s[6]}
  end
end
redis.call('HSET', KEYS[3], 'ended', now, 'successor', '', 'grace_until', zero, 'retry_digest', '')
if not revoked or revoked == zero then redis.call('HSET', KEYS[2], 'revoked', now) end
return {'reused'}
`)

// endSession ends a session and revokes its device; the first time stays.
// KEYS: device, session. ARGV: at, zero time.
var endSession = redis.NewScript(`
local e = redis.call('HGET', KEYS[2], 'ended')
if not e then return 'notfound' end
if e == ARGV[2] then
  redis.call('HSET', KEYS[2], 'ended', ARGV[1], 'successor', '', 'grace_until', ARGV[2], 'retry_digest', '')
end
local r = redis.call('HGET', KEYS[1], 'revoked')
if r == ARGV[2] then redis.call('HSET', KEYS[1], 'revoked', ARGV[1]) end
return 'ok'
`)

// setBanned sets the ban flag. KEYS: account. ARGV: account id, "0"/"1".
var setBanned = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 'notfound' end
redis.call('HSET', KEYS[1], 'banned', ARGV[2])
return 'ok'
`)
