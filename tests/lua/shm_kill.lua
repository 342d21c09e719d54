-- Processes killed with SIGKILL cannot release their holds on shared
-- memory: the tracker unlinks what is left once every process of the
-- program is gone.  Runs small luamp programs, kills their whole process
-- tree, and polls /dev/shm (with a deadline) until their entries are gone.
-- Also: a Barrier with a killed party, and the warning for a named
-- SharedMemory block that was never unlinked.  The programs inherit
-- LUAMP_START_METHOD, so this runs once per start method.
-- start methods: fork spawn forkserver
local leakcheck = require "leakcheck"
local exe = assert(os.getenv("LUAMP_EXE"), "LUAMP_EXE not set")

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Writes `source` to a temporary file and returns its path.
local function script(source)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(source)
  f:close()
  return path
end

-- Waits until no entry of `pids` is in /dev/shm (at most 10 s).
local function wait_clean(pids, what)
  local deadline = os.monotonic() + 10
  while #leakcheck.entries(pids) > 0 do
    assert(os.monotonic() < deadline, what .. ": left in /dev/shm: " .. table.concat(leakcheck.entries(pids), " "))
    os.sleep(0.05)
  end
end

-- 1. A program and its children are killed with SIGKILL while they hold
-- Values, Locks and a named block.  Run in the background, it prints its
-- pids; we kill the whole tree.
do
  local path = script [[
    local mp = require "multiprocessing"
    local v = mp.Value("i", 0)
    local a = mp.Array("d", 1000)
    local lock = mp.Lock()
    local shm = mp.shared_memory.SharedMemory{create = true, size = 64}
    local ready = mp.Semaphore(0)
    local ps = {}
    for i = 1, 2 do
      ps[i] = mp.Process{target = function() lock:acquire(); ready:release(); os.sleep(60) end}
      ps[i]:start()
      if i == 1 then ready:acquire() ; lock:release() end
    end
    ready:acquire()
    print(os.getpid(), ps[1].pid, ps[2].pid)
    io.stdout:flush()
    os.sleep(60)
  ]]
  local out = assert(io.popen(shell_quote(exe) .. " " .. shell_quote(path) .. " 2>/dev/null"))
  local line = out:read("l")
  assert(line, "the program printed nothing")
  local pids = {}
  for pid in line:gmatch("%d+") do pids[#pids + 1] = tonumber(pid) end
  assert(#pids == 3, line)
  assert(#leakcheck.entries(pids) >= 5, "expected the program's segments in /dev/shm")
  os.execute("kill -9 " .. table.concat(pids, " "))
  out:close()
  wait_clean(pids, "after SIGKILL of the tree")
  os.remove(path)
end

-- 2. A Barrier with a killed party: the others get BrokenBarrierError on
-- timeout; after the program, the tracker frees what the victim held.
do
  local path = script [[
    local mp = require "multiprocessing"
    local bar = mp.Barrier(3)
    local victim = mp.Process{target = function() os.sleep(60); bar:wait() end}
    victim:start()
    local other = mp.Process{target = function()
      local ok, err = pcall(bar.wait, bar, 0.5)
      os.exit((not ok and mp.isinstance(err, mp.BrokenBarrierError)) and 0 or 3)
    end}
    other:start()
    os.sleep(0.05)
    victim:kill()
    victim:join()
    local ok, err = pcall(bar.wait, bar, 0.5)
    assert(not ok and mp.isinstance(err, mp.BrokenBarrierError), tostring(err))
    other:join(30)
    assert(other.exitcode == 0, "other party: " .. tostring(other.exitcode))
    assert(bar.broken)
    print(os.getpid())
  ]]
  local out = assert(io.popen(shell_quote(exe) .. " " .. shell_quote(path)))
  local text = out:read("a")
  local ok = out:close()
  assert(ok, "the Barrier program failed")
  local pid = tonumber(text:match("%d+"))
  wait_clean({pid}, "after a Barrier with a killed party")
  os.remove(path)
end

-- 3. A named block never unlinked: removed at the end, with a warning.
do
  local path = script [[
    local mp = require "multiprocessing"
    local shm = mp.shared_memory.SharedMemory{create = true, size = 16}
    print(os.getpid(), shm.name)
  ]]
  local errfile = os.tmpname()
  local out = assert(io.popen(shell_quote(exe) .. " " .. shell_quote(path) .. " 2>" .. shell_quote(errfile)))
  local text = out:read("a")
  assert(out:close())
  local pid, name = text:match("(%d+)%s+(%S+)")
  wait_clean({tonumber(pid)}, "a named block never unlinked")
  -- the tracker writes its warning just before it exits
  local deadline, err = os.monotonic() + 5, ""
  repeat
    local f = io.open(errfile)
    err = f:read("a")
    f:close()
    if err:find("leaked shared_memory") then break end
    os.sleep(0.05)
  until os.monotonic() > deadline
  assert(err:find("There appear to be 1 leaked shared_memory objects") and err:find(name, 1, true), err)
  os.remove(errfile)
  os.remove(path)
end
