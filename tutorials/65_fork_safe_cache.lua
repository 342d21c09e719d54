-- 65_fork_safe_cache: DOC-42, from Python's multiprocessing docs,
-- "Programming guidelines › Beware of replacing sys.stdin".  Python's
-- fragment is a property that remembers the pid it was filled in and
-- starts an empty cache when it is read in another process.
--
-- A real small program around it: a cache of connections.  A connection
-- (a socket to a database, say) belongs to the process that opened it;
-- two processes talking over one socket mix up their replies.  A child
-- gets the parent's cache with its contents: inherited under fork, copied
-- with the target's upvalues under spawn and forkserver.  The naive cache
-- hands the parent's connection to the child; the one keyed by pid sees
-- that it is in another process and connects anew.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function me() return mp.current_process().name end

-- A stand-in for a real connection: it records which process opened it.
local function connect(host)
  print(me() .. ": connecting to " .. host)
  return {host = host, owner = me()}
end

local function query(conn, n)
  local note = conn.owner == me() and "" or "  <-- not ours!"
  print(string.format("%s: query %d on the connection of %s%s", me(), n, conn.owner, note))
end

-- The naive cache: one table of connections, whoever asks.  (The methods
-- are fields of the object rather than of a metatable, so the object can
-- travel to a spawned child as it is: a table with a metatable needs
-- mp.register_class.)
local function naive_get(self, host)
  local c = self.conns[host]
  if not c then c = connect(host); self.conns[host] = c end
  return c
end
local function new_naive_cache()
  return {conns = {}, get = naive_get}
end

-- The fork-safe cache: the table belongs to the process whose pid it
-- records; read from any other process, it starts empty.
local function safe_store(self)
  if self.pid ~= os.getpid() then
    self.pid = os.getpid()
    self.conns = {}
  end
  return self.conns
end
local function safe_get(self, host)
  local store = self:store()
  local c = store[host]
  if not c then c = connect(host); store[host] = c end
  return c
end
local function new_safe_cache()
  return {pid = os.getpid(), conns = {}, store = safe_store, get = safe_get}
end

for _, make in ipairs {new_naive_cache, new_safe_cache} do
  local cache = make()
  print(make == new_naive_cache and "-- naive cache" or "-- cache keyed by pid")
  query(cache:get("db"), 1)
  query(cache:get("db"), 2)            -- a cache hit: no new connection
  local p = mp.Process{target = function() query(cache:get("db"), 3) end}
  p:start()
  p:join(30)
  query(cache:get("db"), 4)            -- the parent's cache is untouched
end
