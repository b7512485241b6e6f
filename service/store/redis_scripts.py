"""The Redis store's writes, as Lua scripts: Redis runs a script whole and alone, so the
version check and every write of a commit happen as one step; a client that dies while
sending one never leaves half of it applied (Redis runs nothing until the command is whole).

Keys of a session S (prefix P): P s:S:meta (hash: header fields, `index` of arrays as JSON),
P s:S:arr (hash: array bytes), P s:S:resp:<sha256 of key> (hash: one idempotent answer),
P s:S:resps (set of those answer keys, so delete needs no KEYS scan). Global: P idle (zset
session → last use), P sizes (hash session → stored bytes), P bytes (sum of the sizes).
Per owner (a client: API key or address), for its caps: P owners (hash session → owner),
P client_bytes (hash owner → the sum of its sessions' sizes), P c:<owner>:idle (zset
session → last use, so its live sessions are counted by score, swept or not).
Results are arrays whose first element says what happened: ok, missing, conflict, quota,
exists, replay.
"""

# KEYS: meta arr idle sizes bytes owners client_bytes owner_idle
# ARGV: id now ttl_ms max_sessions max_store_bytes stored_bytes owner max_client_sessions
#       max_client_bytes session_cutoff n_meta meta_pairs... arr_pairs...
# The owner's caps first (0: none), counted by its own live sessions' last uses.
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
local size = tonumber(ARGV[6])
local owner = ARGV[7]
if owner ~= '' then
  local mine = redis.call('ZCOUNT', KEYS[8], '(' .. ARGV[10], '+inf') + 1
  local cap = tonumber(ARGV[8])
  if cap > 0 and mine > cap then return {'quota', 'max_client_sessions', mine} end
  local used = tonumber(redis.call('HGET', KEYS[7], owner) or '0') + size
  cap = tonumber(ARGV[9])
  if cap > 0 and used > cap then return {'quota', 'max_client_bytes', used} end
end
local count = redis.call('ZCARD', KEYS[3]) + 1
if count > tonumber(ARGV[4]) then return {'quota', 'max_sessions', count} end
local total = tonumber(redis.call('GET', KEYS[5]) or '0') + size
if total > tonumber(ARGV[5]) then return {'quota', 'max_store_bytes', total} end
local i = 12
for _ = 1, tonumber(ARGV[11]) do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2
end
while i <= #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], size)
redis.call('INCRBY', KEYS[5], size)
if owner ~= '' then
  redis.call('HSET', KEYS[6], ARGV[1], owner)
  redis.call('HINCRBY', KEYS[7], owner, size)
  redis.call('ZADD', KEYS[8], ARGV[2], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {'ok'}
"""

# KEYS: meta arr idle sizes bytes resps resp client_bytes owner_idle
# ARGV: id now ttl_ms session_cutoff expected_version max_store_bytes stored_bytes
#       response_cutoff response_ttl_ms owner max_client_bytes n_meta meta_pairs...
#       n_response response_pairs... n_delete delete_fields... arr_pairs...
COMMIT = """
local meta = redis.call('HMGET', KEYS[1], 'version', 'last_used_at')
if not meta[1] or tonumber(meta[2]) <= tonumber(ARGV[4]) then return {'missing'} end
local owner = ARGV[10]
local i = 12
local n_meta = tonumber(ARGV[i]); local meta_at = i + 1; i = meta_at + 2 * n_meta
local n_resp = tonumber(ARGV[i]); local resp_at = i + 1; i = resp_at + 2 * n_resp
if n_resp > 0 then  -- a retry is told so, whatever the version
  local created = redis.call('HGET', KEYS[7], 'created_at')
  if created and tonumber(created) > tonumber(ARGV[8]) then
    return {'replay', redis.call('HGETALL', KEYS[7])}
  end
end
if meta[1] ~= ARGV[5] then return {'conflict', tonumber(meta[1])} end
local size = tonumber(ARGV[7])
local delta = size - tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
if owner ~= '' and delta > 0 and tonumber(ARGV[11]) > 0 then
  local used = tonumber(redis.call('HGET', KEYS[8], owner) or '0') + delta
  if used > tonumber(ARGV[11]) then return {'quota', 'max_client_bytes', used} end
end
local total = tonumber(redis.call('GET', KEYS[5]) or '0') + delta
if delta > 0 and total > tonumber(ARGV[6]) then return {'quota', 'max_store_bytes', total} end
for j = meta_at, meta_at + 2 * n_meta - 1, 2 do
  redis.call('HSET', KEYS[1], ARGV[j], ARGV[j + 1])
end
local n_delete = tonumber(ARGV[i]); i = i + 1
for _ = 1, n_delete do redis.call('HDEL', KEYS[2], ARGV[i]); i = i + 1 end
while i <= #ARGV do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]); i = i + 2
end
if n_resp > 0 then
  redis.call('DEL', KEYS[7])
  for j = resp_at, resp_at + 2 * n_resp - 1, 2 do
    redis.call('HSET', KEYS[7], ARGV[j], ARGV[j + 1])
  end
  redis.call('PEXPIRE', KEYS[7], ARGV[9])
  redis.call('SADD', KEYS[6], KEYS[7])
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], size)
redis.call('INCRBY', KEYS[5], delta)
if owner ~= '' then
  redis.call('HINCRBY', KEYS[8], owner, delta)
  redis.call('ZADD', KEYS[9], ARGV[2], ARGV[1])
end
for k = 1, 2 do redis.call('PEXPIRE', KEYS[k], ARGV[3]) end
redis.call('PEXPIRE', KEYS[6], ARGV[3])
return {'ok'}
"""

# KEYS: meta resps resp
# ARGV: now session_cutoff response_cutoff response_ttl_ms ttl_ms response_pairs...
SAVE_RESPONSE = """
local last = redis.call('HGET', KEYS[1], 'last_used_at')
if not last or tonumber(last) <= tonumber(ARGV[2]) then return {'missing'} end
local created = redis.call('HGET', KEYS[3], 'created_at')
if created and tonumber(created) > tonumber(ARGV[3]) then
  return {'replay', redis.call('HGETALL', KEYS[3])}
end
redis.call('DEL', KEYS[3])
for j = 6, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[j], ARGV[j + 1]) end
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[2], KEYS[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {'ok'}
"""

# KEYS: meta arr idle resps    ARGV: id now session_cutoff ttl_ms prefix
# The owner's index of last uses is found by the owner the meta names (not in KEYS: fine
# outside Redis Cluster, as DELETE's answer keys).
TOUCH = """
local last = redis.call('HGET', KEYS[1], 'last_used_at')
if not last or tonumber(last) <= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'last_used_at', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= '' then
  redis.call('ZADD', ARGV[5] .. 'c:' .. owner .. ':idle', ARGV[2], ARGV[1])
end
for _, key in ipairs({KEYS[1], KEYS[2], KEYS[4]}) do redis.call('PEXPIRE', key, ARGV[4]) end
return 1
"""

# KEYS: meta arr idle sizes bytes resps owners client_bytes
# ARGV: id session_cutoff only_if_idle ('1': a sweep, which must not remove a session that
#       was used since it was listed) prefix
# Returns 1 if a live session was deleted. Answer keys come from the resps set; they are
# not in KEYS, which is fine outside Redis Cluster (the store does not support Cluster).
DELETE = """
local score = redis.call('ZSCORE', KEYS[3], ARGV[1])
if ARGV[3] == '1' and score and tonumber(score) > tonumber(ARGV[2]) then return 0 end
local last = redis.call('HGET', KEYS[1], 'last_used_at')
local live = (last and tonumber(last) > tonumber(ARGV[2])) and 1 or 0
for _, key in ipairs(redis.call('SMEMBERS', KEYS[6])) do redis.call('DEL', key) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[6])
redis.call('ZREM', KEYS[3], ARGV[1])
local size = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('DECRBY', KEYS[5], size)
local owner = redis.call('HGET', KEYS[7], ARGV[1])
if owner then
  redis.call('ZREM', ARGV[4] .. 'c:' .. owner .. ':idle', ARGV[1])
  if redis.call('HINCRBY', KEYS[8], owner, -size) <= 0 then redis.call('HDEL', KEYS[8], owner) end
  redis.call('HDEL', KEYS[7], ARGV[1])
end
return live
"""
