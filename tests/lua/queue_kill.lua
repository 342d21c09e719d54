-- A consumer killed (SIGKILL) in the middle of `get` leaves the queue usable
-- for the others and loses at most the message it was taking; a producer
-- killed in the middle of `put` never leaves half a message visible.  The
-- scenario runs in a second luamp (killed processes keep their hold on the
-- ring until the program ends); afterwards the segment tracker must have
-- removed every /dev/shm entry.
local exe = assert(os.getenv("LUAMP_EXE"), "LUAMP_EXE not set")

local scenario = [==[
local mp = require "multiprocessing"
local N = 3000
local q = mp.Queue()
local reports = mp.Queue()
-- Messages of 1 MiB are copied in and out under the ring's lock, so a kill
-- often lands while the victim holds it.
local payload = string.rep("p", 1024 * 1024)

local function consumer(q, reports, payload)
  while true do
    local m = q:get()
    if m == nil then break end
    assert(m[2] == payload, "a torn message")
    reports:put(m[1])
  end
  reports:put("done")
end

local function producer(q, n, payload)
  for i = 1, n do q:put({i, payload}) end
end

-- Victims: consumers killed at random moments.
local pids = {os.getpid()}
local kills = 0
local survivors = {}
for i = 1, 2 do
  survivors[i] = mp.Process{target = consumer, args = {q, reports, payload}}
  survivors[i]:start()
end
local main_producer = mp.Process{target = producer, args = {q, N, payload}}
main_producer:start()
pids[#pids + 1] = main_producer.pid
for i = 1, 2 do pids[#pids + 1] = survivors[i].pid end
for round = 1, 6 do
  local victim = mp.Process{target = consumer, args = {q, reports, payload}}
  victim:start()
  pids[#pids + 1] = victim.pid
  os.sleep(0.02 + 0.013 * round)
  victim:kill()
  victim:join(10)
  assert(victim.exitcode == -9, "victim exit " .. tostring(victim.exitcode))
  kills = kills + 1
end
main_producer:join(60)
assert(main_producer.exitcode == 0)
q:put(nil); q:put(nil)
local seen, got, done = {}, 0, 0
while done < 2 do
  local r = reports:get(true, 60)
  if r == "done" then
    done = done + 1
  else
    assert(not seen[r], "message " .. tostring(r) .. " delivered twice")
    seen[r] = true
    got = got + 1
  end
end
for i = 1, 2 do survivors[i]:join(30); assert(survivors[i].exitcode == 0) end
assert(N - got <= kills, string.format("lost %d messages with %d kills", N - got, kills))
assert(q:empty())
-- The queue still works in both directions.
q:put("still usable")
assert(q:get(true, 5) == "still usable")
print("ok", got, N - got)
print("pids " .. table.concat(pids, " "))
]==]

local path = os.tmpname()
local f = assert(io.open(path, "w"))
f:write(scenario)
f:close()
local p = assert(io.popen("timeout 100 " .. exe .. " " .. path .. " 2>&1"))
local out = p:read("a")
local ok = p:close()
os.remove(path)
io.stderr:write(out)
assert(ok and out:find("ok\t%d+\t%d+"), "scenario failed:\n" .. out)
local pids = {}
for pid in out:match("pids ([%d ]+)"):gmatch("%d+") do pids[#pids + 1] = pid end

-- The tracker removes what the killed processes held once the program is
-- gone.
-- (Only this run's names: other programs may use /dev/shm meanwhile.)
local function leftovers()
  local n = 0
  local ls = io.popen("ls /dev/shm 2>/dev/null")
  for name in ls:lines() do
    local pid = name:match("^luamp%-(%d+)%-")
    for _, p in ipairs(pids) do
      if pid == p then n = n + 1 end
    end
  end
  ls:close()
  return n
end
local left
for _ = 1, 50 do
  left = leftovers()
  if left == 0 then break end
  os.sleep(0.1)
end
assert(left == 0, left .. " /dev/shm entries left")
print("ok")
