package cluster

import "github.com/redis/go-redis/v9"

// Every script touches the keys of one page only, all under the page's hash
// tag, so that it also runs on a Redis Cluster. Generations are compared as
// zero-padded decimal strings (genString): Lua's numbers are doubles and
// would round them.

// genScript hands out the next counter value of a key, never one at or
// below ARGV[1]: a replica passes the counter of the page it holds, so a
// counter that went backwards (a Redis that lost its data) cannot make its
// next fetch look older than what it serves.
var genScript = redis.NewScript(`
local g = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if g <= floor then
  g = floor + 1
  redis.call('SET', KEYS[1], g)
end
return g`)

// saveScript stores a page's blob in the key's hash unless that variant
// already holds a newer generation, or a purge or soft revalidation of a
// later generation has set the floor. KEYS[1]: the hash; ARGV: key, variant,
// generation, blob. 1 stored, 0 older, -1 the hash holds another key.
var saveScript = redis.NewScript(`
local k = redis.call('HGET', KEYS[1], 'k')
if k and k ~= ARGV[1] then return -1 end
local floor = redis.call('HGET', KEYS[1], 'f')
if floor and ARGV[3] < floor then return 0 end
local cur = redis.call('HGET', KEYS[1], 'g:' .. ARGV[2])
if cur and ARGV[3] < cur then return 0 end
redis.call('HSET', KEYS[1], 'k', ARGV[1], 'g:' .. ARGV[2], ARGV[3], 'p:' .. ARGV[2], ARGV[4])
return 1`)

// dropScript is a purge or soft revalidation: it removes the variants older
// than ARGV[2] and raises the floor to it, so that no fill that started
// before is stored after. 1 done, -1 the hash holds another key.
var dropScript = redis.NewScript(`
local k = redis.call('HGET', KEYS[1], 'k')
if k and k ~= ARGV[1] then return -1 end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f = all[i]
  if string.sub(f, 1, 2) == 'g:' and all[i + 1] < ARGV[2] then
    redis.call('HDEL', KEYS[1], f, 'p:' .. string.sub(f, 3))
  end
end
local floor = redis.call('HGET', KEYS[1], 'f')
if not floor or floor < ARGV[2] then
  redis.call('HSET', KEYS[1], 'k', ARGV[1], 'f', ARGV[2])
end
return 1`)

// unlockScript releases a fill lock only when it still holds our token.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// heartbeatScript records this replica as seen now, by the server's clock
// (every replica reads the same one), forgets replicas silent for a
// minute, and returns the replicas seen within ARGV[2] milliseconds.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then redis.call('ZADD', KEYS[1], now, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[2]), '+inf')`)

// epochScript returns the cluster's epoch, the server time in seconds
// when this Redis first served the cluster. A Redis that lost its data
// starts a later epoch, and generations lead with it: every page fetched
// after the loss is newer than any fetched before.
var epochScript = redis.NewScript(`
local e = redis.call('GET', KEYS[1])
if not e then
  e = redis.call('TIME')[1]
  redis.call('SET', KEYS[1], e)
end
return e`)
