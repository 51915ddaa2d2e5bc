package redisstore

import "github.com/redis/go-redis/v9"

// Every script below reads and writes only the keys it is given, all on
// one tag (one Cluster slot). Scripts that touch every device of an
// account get the device set as the caller read it just before (a count
// in ARGV, then the ids; their device and session keys in KEYS) and answer
// {'retry'} when the set has changed meanwhile; the caller reads it again.
//
// Link codes: ending every session of an account (endAll, useRecovery
// signing the others out) deletes the account's links hash, and
// redeemLink takes only a code whose digest is still in that hash, so a
// code made on a device since signed out (a stolen phone) cannot bring a
// new device in afterwards. The link records are not in those scripts'
// keys (listing them would need a snapshot of the hash); they go with
// their TTL, the code's lifetime, and name a code nobody can redeem.
//
// A link record names the device that made it ('device'); redeemLink
// takes the code only while that device is an active device of the
// account (not revoked, its session not ended), so a code made on a
// phone since revoked or signed out alone brings no device in either.
// The maker's device and session keys are on the account's tag like the
// rest; the caller reads the maker from the record first and the script
// checks it is still the one named. Records written before the maker was
// recorded have no 'device' and are taken until they expire.

// luaMaker checks that a link code's maker, read from the link record as
// maker, is the device named in ARGV (the caller read it just before) and
// an active device of account acc: devKey and sessKey are its keys.
const luaMaker = `
local function makerActive(maker, named, devKey, sessKey, acc, zero)
  if not maker or maker == '' then return named == '' end
  if maker ~= named then return false end
  local d = redis.call('HMGET', devKey, 'account_id', 'revoked')
  if d[1] ~= acc or d[2] ~= zero then return false end
  return redis.call('HGET', sessKey, 'ended') == zero
end
`

// luaSnapshot checks that a set (isSet) or the fields of a hash (isHash)
// are exactly the members listed in ARGV from index first: a count, then
// the members.
const luaSnapshot = `
local function isSet(key, first)
  local n = tonumber(ARGV[first])
  if redis.call('SCARD', key) ~= n then return false end
  for i = 1, n do
    if redis.call('SISMEMBER', key, ARGV[first + i]) == 0 then return false end
  end
  return true
end
local function isHash(key, first)
  local n = tonumber(ARGV[first])
  if redis.call('HLEN', key) ~= n then return false end
  for i = 1, n do
    if redis.call('HEXISTS', key, ARGV[first + i]) == 0 then return false end
  end
  return true
end
`

// luaEnd ends a session and revokes its device at `at`, as endSession
// does, and marks the session with the operation id, so that a re-sent
// script still reports the sessions it ended. It reports whether this
// operation ended them.
const luaEnd = `
local function endDevice(devKey, sessKey, at, zero, op)
  local e = redis.call('HMGET', sessKey, 'ended', 'end_op')
  if not e[1] then return false end
  if e[2] == op then return true end
  local r = redis.call('HGET', devKey, 'revoked')
  local changed = false
  if e[1] == zero then
    redis.call('HSET', sessKey, 'ended', at, 'successor', '', 'grace_until', zero, 'retry_digest', '', 'end_op', op)
    changed = true
  end
  if r == zero then
    redis.call('HSET', devKey, 'revoked', at)
    changed = true
  end
  return changed
end
`

// luaHold turns a name record into a hold until `untilT` (or frees it when
// that has passed) if it still registers the account at the given rename
// generation: a later claim of the name, by anyone, is left alone.
const luaHold = `
local function hold(nameKey, acc, gen, now, untilT, ttl, zero)
  local n = redis.call('HMGET', nameKey, 'account_id', 'gen', 'until')
  if n[1] ~= acc or n[2] ~= gen or n[3] ~= zero then return end
  if before(now, untilT) then
    redis.call('HSET', nameKey, 'until', untilT)
    redis.call('PEXPIRE', nameKey, ttl)
  else
    redis.call('DEL', nameKey)
  end
end
`

// luaNameState reads a name record at now: 'free', 'held', or
// 'registered' (with the record's fields). A registration the caller has
// found stale (staleAcc and staleGen, see Store.resolve) counts as held
// until staleUntil and is rewritten as such a hold.
const luaNameState = `
local function nameState(nameKey, now, zero, staleAcc, staleGen, staleUntil, staleTTL)
  local n = redis.call('HMGET', nameKey, 'account_id', 'gen', 'until', 'home')
  if not n[1] then return 'free', n end
  if n[3] ~= zero then
    if before(now, n[3]) then return 'held', n end
    return 'free', n
  end
  if staleAcc ~= '' and n[1] == staleAcc and n[2] == staleGen then
    if before(now, staleUntil) then
      redis.call('HSET', nameKey, 'until', staleUntil)
      redis.call('PEXPIRE', nameKey, staleTTL)
      return 'held', n
    end
    return 'free', n
  end
  return 'registered', n
end
`

// createAccount claims the name and writes the account, its recovery
// codes, device and session. KEYS: name, account, devices, device,
// session, recovery. ARGV: op, account id, device id, now, home tag, zero
// time, stale acc, stale gen, stale until, stale ttl, then groups account,
// device, session, recovery digests.
var createAccount = redis.NewScript(luaBefore + luaGroups + luaNameState + `
local op, acc, dev, now, home, zero = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local cur = redis.call('HMGET', KEYS[1], 'account_id', 'op')
if cur[1] == acc and cur[2] == op then return {'ok'} end
if redis.call('EXISTS', KEYS[2], KEYS[4], KEYS[5]) > 0 then return {'exists'} end
local st, n = nameState(KEYS[1], now, zero, ARGV[7], ARGV[8], ARGV[9], ARGV[10])
if st == 'held' then return {'taken'} end
if st == 'registered' then return {'registered', n[1], n[4] or '', n[2]} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'account_id', acc, 'home', home, 'gen', '0', 'until', zero, 'op', op)
argi = 11
write('HSET', KEYS[2])
write('HSET', KEYS[4])
write('HSET', KEYS[5])
write('SADD', KEYS[6])
redis.call('SADD', KEYS[3], dev)
return {'ok'}
`)

// claimName claims a name for a rename: free, or registered to the same
// account (a generation only grows). KEYS: name. ARGV: account id, home
// tag, generation, op, now, zero time, stale acc, stale gen, stale until,
// stale ttl.
var claimName = redis.NewScript(luaBefore + luaNameState + `
local acc, home, gen, op, now, zero = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local st, n = nameState(KEYS[1], now, zero, ARGV[7], ARGV[8], ARGV[9], ARGV[10])
if st == 'held' then return {'taken'} end
if st == 'registered' then
  if n[1] ~= acc then return {'registered', n[1], n[4] or '', n[2]} end
  if tonumber(n[2]) < tonumber(gen) then
    redis.call('HSET', KEYS[1], 'gen', gen, 'home', home, 'op', op)
  end
  return {'ok'}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'account_id', acc, 'home', home, 'gen', gen, 'until', zero, 'op', op)
return {'ok'}
`)

// renameAccount moves the account to its claimed name if it still has
// the name and generation the caller read; the old name is held in the
// same step when its record is on this slot. KEYS: account, old name (the
// account again when elsewhere). ARGV: account id, current key, current
// gen, new key, new display, new gen, old tag, now, hold until, hold ttl,
// zero time, old name here ("1"/"0").
var renameAccount = redis.NewScript(luaBefore + luaHold + `
local acc, curKey, curGen = ARGV[1], ARGV[2], ARGV[3]
local a = redis.call('HMGET', KEYS[1], 'id', 'username_key', 'name_gen')
if a[1] ~= acc then return {'notfound'} end
if a[2] ~= curKey or a[3] ~= curGen then return {'retry'} end
redis.call('HSET', KEYS[1], 'username', ARGV[5], 'username_key', ARGV[4], 'name_gen', ARGV[6],
  'prev_tag', ARGV[7], 'prev_gen', curGen, 'prev_until', ARGV[9])
if ARGV[12] == '1' then hold(KEYS[2], acc, curGen, ARGV[8], ARGV[9], ARGV[10], ARGV[11]) end
return {'ok'}
`)

// holdName holds a name the account has left. KEYS: name. ARGV: account
// id, gen, now, hold until, hold ttl, zero time.
var holdName = redis.NewScript(luaBefore + luaHold + `
hold(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
return 'ok'
`)

// releaseName drops a claim this operation made and could not use.
// KEYS: name. ARGV: account id, op, zero time.
var releaseName = redis.NewScript(`
local n = redis.call('HMGET', KEYS[1], 'account_id', 'op', 'until')
if n[1] == ARGV[1] and n[2] == ARGV[2] and n[3] == ARGV[3] then redis.call('DEL', KEYS[1]) end
return 'ok'
`)

// deleteAccount removes the account, its devices, sessions, link and
// recovery codes, holds its name when the record is on this slot, and
// leaves a tombstone (name tag, gen, until) so a repeat can finish the
// hold. KEYS: account, devices, links, recovery, tomb, name (the tomb
// again when elsewhere), then each device's device and session keys, then
// each link code's key. ARGV: op, account id, now, hold until, hold ttl,
// zero time, expected username key, name tag, name here ("1"/"0"), tomb
// ttl, then the device snapshot, then the link snapshot.
var deleteAccount = redis.NewScript(luaBefore + luaHold + luaSnapshot + `
local op, acc, now, untilT, ttl, zero = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local a = redis.call('HMGET', KEYS[1], 'id', 'username_key', 'name_gen')
if a[1] ~= acc then
  local t = redis.call('HMGET', KEYS[5], 'op', 'name_tag', 'gen', 'until')
  if not t[1] then return {'notfound'} end
  if t[1] == op then return {'ok', t[2], t[3], t[4]} end
  return {'gone', t[2], t[3], t[4]}
end
if a[2] ~= ARGV[7] then return {'retry'} end
local nd = tonumber(ARGV[11])
local lf = 12 + nd
if not isSet(KEYS[2], 11) or not isHash(KEYS[3], lf) then return {'retry'} end
for i = 1, nd do redis.call('DEL', KEYS[5 + 2 * i], KEYS[6 + 2 * i]) end
for j = 1, tonumber(ARGV[lf]) do redis.call('DEL', KEYS[6 + 2 * nd + j]) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
if ARGV[9] == '1' then hold(KEYS[6], acc, a[3], now, untilT, ttl, zero) end
redis.call('HSET', KEYS[5], 'op', op, 'name_tag', ARGV[8], 'gen', a[3], 'until', untilT)
redis.call('PEXPIRE', KEYS[5], ARGV[10])
return {'ok', ARGV[8], a[3], untilT}
`)

// endAll ends every live session of the account and voids its link codes
// (see the top of this file). KEYS: account, devices, then each device's
// device and session keys, then links. ARGV: op, account id, at, zero
// time, then the device snapshot. Reply: 'ok' and the ids ended.
var endAll = redis.NewScript(luaSnapshot + luaEnd + `
local op, acc, at, zero = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', KEYS[1], 'id') ~= acc then return {'notfound'} end
if not isSet(KEYS[2], 5) then return {'retry'} end
redis.call('DEL', KEYS[#KEYS])
local ended = {'ok'}
for i = 1, tonumber(ARGV[5]) do
  if endDevice(KEYS[1 + 2 * i], KEYS[2 + 2 * i], at, zero, op) then ended[#ended + 1] = ARGV[5 + i] end
end
return ended
`)

// createLink stores a link code made by an active device of the account.
// KEYS: account, links, link, the maker's device and session. ARGV: op,
// account id, digest (hex), now, created, expires, maxLive, ttl, maker
// device id, zero time.
var createLink = redis.NewScript(luaBefore + `
local op, acc, hx, now, maker, zero = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[9], ARGV[10]
local a = redis.call('HMGET', KEYS[1], 'id', 'banned')
if a[1] ~= acc then return 'notfound' end
local l = redis.call('HGET', KEYS[3], 'op')
if l then
  if l == op then return 'ok' end
  return 'exists'
end
if a[2] == '1' then return 'banned' end
local d = redis.call('HMGET', KEYS[4], 'account_id', 'revoked')
if d[1] ~= acc then return 'notfound' end
if d[2] ~= zero or redis.call('HGET', KEYS[5], 'ended') ~= zero then return 'ended' end
local all = redis.call('HGETALL', KEYS[2])
local live = 0
for i = 1, #all, 2 do
  if before(now, all[i + 1]) then live = live + 1 else redis.call('HDEL', KEYS[2], all[i]) end
end
if live >= tonumber(ARGV[7]) then return 'toomany' end
redis.call('HSET', KEYS[3], 'account_id', acc, 'device', maker, 'created', ARGV[5], 'expires', ARGV[6], 'op', op)
redis.call('PEXPIRE', KEYS[3], ARGV[8])
redis.call('HSET', KEYS[2], hx, ARGV[6])
return 'ok'
`)

// redeemLink uses up a live link code whose maker is still active (see
// the top of this file) and adds the device. The code leaves the links
// hash (it no longer counts or redeems) and its record is marked
// 'redeemed_by' the new device, keeping its TTL, for redeemedLink. KEYS: link, links, account,
// devices, device, session, recovery, then the maker's device and session
// (the new device's again when the record names no maker). ARGV: op,
// digest (hex), account id, device id, now, the maker's id as read (""
// for none), zero time, then groups device, session. Reply: the status,
// then for 'ok' the number of account fields, the account hash and the
// recovery digests.
var redeemLink = redis.NewScript(luaBefore + luaGroups + luaMaker + `
local op, hx, acc, dev, now, maker, zero = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local function ok()
  local a = redis.call('HGETALL', KEYS[3])
  local r = {'ok', tostring(#a)}
  for i = 1, #a do r[#r + 1] = a[i] end
  for _, c in ipairs(redis.call('SMEMBERS', KEYS[7])) do r[#r + 1] = c end
  return r
end
if redis.call('HGET', KEYS[5], 'op') == op then return ok() end
local l = redis.call('HMGET', KEYS[1], 'account_id', 'expires', 'device', 'redeemed_by')
if l[1] ~= acc or not before(now, l[2]) or l[4] then return {'notfound'} end
if redis.call('HEXISTS', KEYS[2], hx) == 0 then return {'notfound'} end
if not makerActive(l[3], maker, KEYS[8], KEYS[9], acc, zero) then return {'notfound'} end
local a = redis.call('HMGET', KEYS[3], 'id', 'banned')
if a[1] ~= acc then return {'notfound'} end
if a[2] == '1' then return {'banned'} end
if redis.call('EXISTS', KEYS[5], KEYS[6]) > 0 then return {'exists'} end
redis.call('HSET', KEYS[1], 'redeemed_by', dev)
redis.call('HDEL', KEYS[2], hx)
argi = 8
write('HSET', KEYS[5])
write('HSET', KEYS[6])
redis.call('SADD', KEYS[4], dev)
return ok()
`)

// redeemedLink reads which device redeemed a link code, while the code's
// lifetime lasts and its maker is still active. KEYS: link, account,
// recovery, then the maker's device and session (as for redeemLink).
// ARGV: account id, now, the maker's id as read, zero time. Reply: the
// status, then for 'ok' the device id, the number of account fields, the
// account hash and the recovery digests.
var redeemedLink = redis.NewScript(luaBefore + luaMaker + `
local acc, now, maker, zero = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local l = redis.call('HMGET', KEYS[1], 'account_id', 'expires', 'device', 'redeemed_by')
if l[1] ~= acc or not before(now, l[2]) or not l[4] or l[4] == '' then return {'notfound'} end
if not makerActive(l[3], maker, KEYS[4], KEYS[5], acc, zero) then return {'notfound'} end
local b = redis.call('HMGET', KEYS[2], 'id', 'banned')
if b[1] ~= acc then return {'notfound'} end
if b[2] == '1' then return {'banned'} end
local a = redis.call('HGETALL', KEYS[2])
local r = {'ok', l[4], tostring(#a)}
for i = 1, #a do r[#r + 1] = a[i] end
for _, c in ipairs(redis.call('SMEMBERS', KEYS[3])) do r[#r + 1] = c end
return r
`)

// setRecovery replaces the recovery codes. KEYS: account, recovery. ARGV:
// account id, salt (hex), digests (hex).
var setRecovery = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 'notfound' end
redis.call('HSET', KEYS[1], 'recovery_salt', ARGV[2])
redis.call('DEL', KEYS[2])
if #ARGV > 2 then redis.call('SADD', KEYS[2], unpack(ARGV, 3)) end
return 'ok'
`)

// addRecovery adds one recovery code. KEYS: account, recovery. ARGV:
// account id, salt (hex), digest (hex), max codes.
var addRecovery = redis.NewScript(`
local a = redis.call('HMGET', KEYS[1], 'id', 'recovery_salt')
if a[1] ~= ARGV[1] then return 'notfound' end
if a[2] and a[2] ~= '' and a[2] ~= ARGV[2] then return 'invalid' end
if redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 1 then return 'ok' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 'toomany' end
redis.call('HSET', KEYS[1], 'recovery_salt', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 'ok'
`)

// useRecovery uses up a recovery code, adds the device and, when asked,
// ends every other session and voids the link codes (see the top of this
// file). KEYS: account, recovery, devices, device, session, then each
// other device's device and session keys, then links. ARGV: op, account
// id, digest (hex), device id, now, zero time, sign out ("1"/"0"), then
// the device snapshot (empty unless signing out), then groups device,
// session. Reply: 'ok' and the ids ended.
var useRecovery = redis.NewScript(luaBefore + luaGroups + luaSnapshot + luaEnd + `
local op, acc, hx, dev, now, zero, signOut = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local n = tonumber(ARGV[8])
if redis.call('HGET', KEYS[4], 'op') == op then
  local ended = {'ok'}
  for i = 1, n do
    if redis.call('HGET', KEYS[5 + 2 * i], 'end_op') == op then ended[#ended + 1] = ARGV[8 + i] end
  end
  return ended
end
local a = redis.call('HMGET', KEYS[1], 'id', 'banned')
if a[1] ~= acc or redis.call('SISMEMBER', KEYS[2], hx) == 0 then return {'notfound'} end
if a[2] == '1' then return {'banned'} end
if redis.call('EXISTS', KEYS[4], KEYS[5]) > 0 then return {'exists'} end
if signOut == '1' and not isSet(KEYS[3], 8) then return {'retry'} end
redis.call('SREM', KEYS[2], hx)
if signOut == '1' then redis.call('DEL', KEYS[#KEYS]) end
local ended = {'ok'}
for i = 1, n do
  if endDevice(KEYS[4 + 2 * i], KEYS[5 + 2 * i], now, zero, op) then ended[#ended + 1] = ARGV[8 + i] end
end
argi = 9 + n
write('HSET', KEYS[4])
write('HSET', KEYS[5])
redis.call('SADD', KEYS[3], dev)
return ended
`)
