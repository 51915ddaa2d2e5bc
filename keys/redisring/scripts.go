package redisring

import "github.com/redis/go-redis/v9"

// Versions are compared as the decimal strings INCR writes, never as Lua
// numbers (doubles).

// initScript creates the ring, and the refresh keys and the pepper unless
// present, with the head, if no ring exists and the version is still the
// one the values were built for.
// KEYS: ring, local, version, pepper, head. ARGV: expected version, ring,
// local, channel, pepper, head.
var initScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[1] then return 'conflict' end
redis.call('SET', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[3]) end
if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('SET', KEYS[4], ARGV[5]) end
redis.call('SET', KEYS[5], ARGV[6])
local v = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[4], tostring(v))
return 'ok'
`)

// putScript stores a value and the new head if the version is unchanged
// (compare and set), increments the version and notifies. go-redis may run
// a script again after a broken connection: finding exactly our value (its
// wrapping nonces, or its version, make it unique) means the first run
// succeeded.
// KEYS: target, version, head. ARGV: expected version, value, channel,
// head (the head alone is written with target = head, value = head).
var putScript = redis.NewScript(`
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then
  if redis.call('GET', KEYS[1]) == ARGV[2] then return 'ok' end
  return 'conflict'
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[3], ARGV[4])
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], tostring(v))
return 'ok'
`)
