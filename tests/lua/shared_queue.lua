-- Beyond Python: every shared object of this issue crosses a Queue to a
-- process that is already running and arrives as the same shared object
-- (Python raises "should only be shared through inheritance").  Also: the
-- sender may drop its object while the message waits in the queue.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local leakcheck = require "leakcheck"

local function worker(inbox, outbox)
  while true do
    local msg = inbox:get()
    if msg == nil then break end
    local kind, obj = msg[1], msg[2]
    if kind == "lock" then
      outbox:put(obj:acquire(false))          -- the parent holds it: false
    elseif kind == "rlock" then
      outbox:put(tostring(obj):match("^<RLock%((%d+), 1%)>$") ~= nil)
    elseif kind == "semaphore" then
      outbox:put(obj:get_value())
    elseif kind == "event" then
      obj:set()
      outbox:put(true)
    elseif kind == "condition" then
      local g <close> = obj:guard()
      obj:notify_all()
      outbox:put(true)
    elseif kind == "value" then
      local g <close> = obj:get_lock():guard()
      obj.value = obj.value * 2
      outbox:put(obj.value)
    elseif kind == "array" then
      for i = 1, #obj do obj[i] = obj[i] + 100 end
      outbox:put(#obj)
    elseif kind == "struct" then
      obj[2].y = -1
      outbox:put(obj[1].x)
    elseif kind == "shm" then
      obj.buf:write(1, "queued")
      outbox:put(obj.size)
    elseif kind == "list" then
      obj[2] = "changed"
      outbox:put(#obj)
    elseif kind == "barrier" then
      outbox:put(obj:wait(30))
    elseif kind == "dropped" then
      outbox:put(obj.value)
    end
  end
end

local inbox, outbox = mp.Queue(), mp.Queue()
local p = mp.Process{target = worker, args = {inbox, outbox}}
p:start()
local function ask(kind, obj)
  inbox:put({kind, obj})
  return outbox:get(true, 30)
end

do
  local lock = mp.Lock()
  lock:acquire()
  assert(ask("lock", lock) == false)
  lock:release()
  local r = mp.RLock()
  r:acquire()
  assert(ask("rlock", r) == true)
  r:release()
  local s = mp.Semaphore(3)
  s:acquire()
  assert(ask("semaphore", s) == 2)
  local ev = mp.Event()
  assert(ask("event", ev) == true and ev:is_set())
  local cond = mp.Condition()
  assert(ask("condition", cond) == true)
  local v = mp.Value("i", 21)
  assert(ask("value", v) == 42 and v.value == 42)
  local a = mp.Array("d", {1, 2, 3})
  assert(ask("array", a) == 3 and a[3] == 103.0)
  local Point = mp.Struct {{"x", "d"}, {"y", "d"}}
  local pts = mp.Array(Point, {{1.5, 2}, {3, 4}})
  assert(ask("struct", pts) == 1.5 and pts[2].y == -1.0)
  local shm = mp.shared_memory.SharedMemory{create = true, size = 32}
  assert(ask("shm", shm) == 32 and shm.buf:read(1, 6) == "queued")
  local sl = mp.shared_memory.ShareableList {"a", "b", "c"}
  assert(ask("list", sl) == 3 and sl[2] == "changed")
  local bar = mp.Barrier(2)
  inbox:put({"barrier", bar})
  local mine = bar:wait(30)
  local theirs = outbox:get(true, 30)
  assert(mine + theirs == 1)
  -- The sender drops its only reference before the receiver decodes: the
  -- in-flight hold keeps the segment alive.
  do
    inbox:put({"dropped", mp.Value("i", 7)})
  end
  collectgarbage(); collectgarbage()
  assert(outbox:get(true, 30) == 7)
  inbox:put(nil)
  p:join(30)
  assert(p.exitcode == 0)
  shm:close(); shm:unlink()
  sl.shm:close(); sl.shm:unlink()
end
inbox:close(); outbox:close()
inbox, outbox = nil, nil
leakcheck.assert_clean({p.pid}, 10)
