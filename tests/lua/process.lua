-- Process under each start method: exit codes, names and nesting, join
-- timeouts, terminate/kill, daemons, active_children, errors for misuse,
-- output through a pipe, contexts.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local method = os.getenv("LUAMP_START_METHOD") or "fork"
assert(mp.get_start_method() == method, "default start method follows LUAMP_START_METHOD")

local function check_error(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):find(pattern), "error '" .. tostring(err) .. "' does not match " .. pattern)
end

-- Exit codes: normal, error, os.exit, signal.
local function exitcode_of(target, ...)
  local p = mp.Process{target = target, args = table.pack(...)}
  p:start()
  p:join(30)
  assert(p.exitcode ~= nil, "child did not finish in time")
  return p.exitcode
end
assert(exitcode_of(function() end) == 0)
assert(exitcode_of(function() error("expected failure, ignore this traceback") end) == 1)
assert(exitcode_of(function(n) os.exit(n) end, 7) == 7)
assert(exitcode_of(function() os.exit(true) end) == 0)
do
  local p = mp.Process{target = os.sleep, args = {60}}
  p:start()
  assert(p:is_alive())
  p:terminate()
  p:join(30)
  assert(p.exitcode == -15, "terminate gives -SIGTERM, got " .. tostring(p.exitcode))
  local k = mp.Process{target = os.sleep, args = {60}}
  k:start()
  k:kill()
  k:join(30)
  assert(k.exitcode == -9)
end

-- Names: creation order and nesting; current_process and parent_process in a child.
do
  local a = mp.Process{target = function() end}
  local b = mp.Process{target = function() end, name = "worker"}
  local an = tonumber(a.name:match("^Process%-(%d+)$"))
  assert(an, a.name)
  assert(b.name == "worker")
  local c = mp.Process{target = function() end}
  assert(c.name == "Process-" .. (an + 2), c.name)
  assert(mp.parent_process() == nil)
  assert(mp.current_process().name == "MainProcess")
end

-- A child reports through its exit code what it saw.
do
  local main_pid = os.getpid()
  local p = mp.Process{target = function()
    local me = mp.current_process()
    if me.name ~= "nested-parent" then os.exit(10) end
    if me.pid ~= os.getpid() then os.exit(11) end
    local parent = mp.parent_process()
    if parent == nil or parent.pid ~= main_pid or parent.name ~= "MainProcess" then os.exit(12) end
    if not parent:is_alive() then os.exit(13) end
    local child = mp.Process{target = function()
      if mp.current_process().name ~= "nested-parent:1" and
         not mp.current_process().name:match("^Process%-%d+:1$") then os.exit(20) end
      if mp.parent_process().name ~= "nested-parent" then os.exit(21) end
    end}
    if not child.name:match(":1$") then os.exit(14) end
    child:start()
    child:join()
    if child.exitcode ~= 0 then os.exit(15) end
  end, name = "nested-parent"}
  p:start()
  p:join(30)
  assert(p.exitcode == 0, "nested check failed with code " .. tostring(p.exitcode))
end

-- join with timeouts: returns at the deadline, leaves exitcode nil.
do
  local p = mp.Process{target = os.sleep, args = {0.5}}
  p:start()
  local t0 = os.monotonic()
  p:join(0.1)
  local dt = os.monotonic() - t0
  assert(dt >= 0.09 and dt < 0.4, "join(0.1) took " .. dt)
  assert(p.exitcode == nil and p:is_alive())
  t0 = os.monotonic()
  p:join(0)
  p:join(-1)
  assert(os.monotonic() - t0 < 0.05, "join(0) and join(-1) return at once")
  p:join(30)
  assert(p.exitcode == 0)
end

-- Misuse raises errors naming the method.
do
  local p = mp.Process{target = function() end}
  check_error("join: can only join a started process", p.join, p)
  check_error("sentinel: process not started", function() return p.sentinel end)
  p:start()
  check_error("start: cannot start a process twice", p.start, p)
  assert(type(p.sentinel) == "number")
  p:join(30)
  p:close()
  check_error("process object is closed", p.is_alive, p)
  check_error("join: cannot join current process", mp.current_process().join, mp.current_process())
  check_error("function expected", mp.Process, {target = 42})
  check_error("table of options expected", mp.Process, "x")
  local running = mp.Process{target = os.sleep, args = {60}}
  running:start()
  check_error("still running", running.close, running)
  running:kill()
  running:join(30)
  running:close()
end

-- A daemon may not start children.
do
  local p = mp.Process{daemon = true, target = function()
    local ok, err = pcall(mp.Process{target = function() end}.start, mp.Process{target = function() end})
    os.exit((not ok and tostring(err):find("daemonic")) and 0 or 1)
  end}
  assert(p.daemon == true)
  p:start()
  check_error("already started", function() p.daemon = false end)
  p:join(30)
  assert(p.exitcode == 0)
end

-- active_children reaps and lists live children; no zombies afterwards.
do
  local ps = {}
  for i = 1, 3 do
    ps[i] = mp.Process{target = os.sleep, args = {i == 1 and 0 or 60}}
    ps[i]:start()
  end
  ps[1]:join(30)
  local live = mp.active_children()
  assert(#live == 2, "two live children, got " .. #live)
  for i = 2, 3 do ps[i]:terminate() end
  for i = 2, 3 do ps[i]:join(30) end
  assert(#mp.active_children() == 0)
  local zombies = io.popen("ps -o stat= --ppid " .. os.getpid()):read("a")
  assert(not zombies:find("Z"), "zombie children left: " .. zombies)
end

-- The run override and extra fields travel with the object.
do
  local P = mp.Process:extend("Counter")
  function P:run() os.exit(self.code + self.args_sum) end
  local p = P{code = 3, args_sum = 4}
  assert(mp.isinstance(p, mp.Process))
  p:start()
  p:join(30)
  assert(p.exitcode == 7, tostring(p.exitcode))
  local q = mp.Process{run = function(self) os.exit(self.value) end, value = 5}
  q:start()
  q:join(30)
  assert(q.exitcode == 5)
end

-- tostring follows the settled form.
do
  local p = mp.Process{target = function() end, name = "t"}
  assert(tostring(p):match('^<Process name="t" parent=%d+ initial>$'), tostring(p))
  p:start()
  p:join(30)
  assert(tostring(p):match('^<Process name="t" pid=%d+ parent=%d+ stopped exitcode=0>$'), tostring(p))
end

-- Contexts carry the whole API and their start method.
do
  local ctx = mp.get_context("fork")
  assert(ctx.get_start_method() == "fork")
  assert(ctx.cpu_count == mp.cpu_count)
  local p = ctx.Process{target = function() end}
  assert(mp.isinstance(p, mp.Process))
  p:start()
  p:join(30)
  assert(p.exitcode == 0)
  assert(mp.get_all_start_methods()[1] == "fork")
  check_error("cannot find context", mp.get_context, "nonsense")
end

-- Output is neither duplicated nor lost when stdout is a pipe.
do
  local exe = os.getenv("LUAMP_EXE")
  if exe then
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local mp = require "multiprocessing"
      io.write("before fork ")   -- buffered, not yet flushed
      local ps = {}
      for i = 1, 4 do
        ps[i] = mp.Process{target = function(n) print("child", n) end, args = {i}}
        ps[i]:start()
      end
      for i = 1, 4 do ps[i]:join() end
      print("done")
    ]])
    f:close()
    local out = io.popen(exe .. " " .. script):read("a")
    os.remove(script)
    local _, befores = out:gsub("before fork", "")
    local _, childs = out:gsub("child\t%d", "")
    assert(befores == 1, "buffered output written " .. befores .. " times:\n" .. out)
    assert(childs == 4 and out:find("done"), out)
  end
end

-- Daemonic children die with a parent killed by SIGKILL (no orphan runs on).
do
  local exe = os.getenv("LUAMP_EXE")
  if exe then
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local mp = require "multiprocessing"
      local d = mp.Process{target = os.sleep, args = {60}, daemon = true}
      d:start()
      print(os.getpid(), d.pid)
      io.stdout:flush()
      os.sleep(60)
    ]])
    f:close()
    local pipe = io.popen("LUAMP_START_METHOD=" .. method .. " " .. exe .. " " .. script)
    local parent_pid, daemon_pid = pipe:read("n", "n")
    assert(parent_pid and daemon_pid, "the parent did not report its daemon")
    local function alive(pid)
      -- A zombie (already dead, not yet reaped by init) counts as gone.
      local st = io.open("/proc/" .. pid .. "/stat")
      if not st then return false end
      local line = st:read("l") or ""
      st:close()
      return not line:match("^%d+ %b() [ZX]")
    end
    assert(alive(daemon_pid))
    os.execute("kill -9 " .. parent_pid)
    pipe:close()
    local deadline = os.monotonic() + 5
    while alive(daemon_pid) and os.monotonic() < deadline do os.sleep(0.02) end
    local survived = alive(daemon_pid)
    if survived then os.execute("kill -9 " .. daemon_pid) end
    os.remove(script)
    assert(not survived, "the daemon outlived its SIGKILLed parent (" .. method .. ")")
  end
end

-- An object of a class registered by a module reaches a fresh child: the
-- codec requires the module named by the class ("tmpmod.Point" -> tmpmod).
do
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  local f = assert(io.open(dir .. "/lmp_test_points.lua", "w"))
  f:write([[
    local mp = require "multiprocessing"
    local Point = {}
    Point.__index = Point
    function Point.new(x, y) return setmetatable({x = x, y = y}, Point) end
    function Point:sum() return self.x + self.y end
    mp.register_class("lmp_test_points.Point", Point)
    return Point
  ]])
  f:close()
  local saved = package.path
  package.path = dir .. "/?.lua;" .. package.path
  local Point = require "lmp_test_points"
  local p = mp.Process{target = function(pt) os.exit(pt:sum()) end, args = {Point.new(3, 4)}}
  p:start()
  p:join(30)
  package.path = saved
  os.remove(dir .. "/lmp_test_points.lua")
  os.remove(dir)
  assert(p.exitcode == 7, "registered class in a child: exit code " .. tostring(p.exitcode))
end

-- A global defined by the main script: present under fork, missing (with a
-- message naming the start method) under spawn and forkserver.
do
  helper_defined_by_main = function() return 0 end  -- luacheck: ignore
  local exe = os.getenv("LUAMP_EXE")
  local p = mp.Process{target = function() os.exit(helper_defined_by_main()) end}
  p:start()
  p:join(30)
  if method == "fork" then
    assert(p.exitcode == 0)
  else
    assert(p.exitcode == 1)
    if exe then
      local script = os.tmpname()
      local f = assert(io.open(script, "w"))
      f:write([[
        local mp = require "multiprocessing"
        function helper() return 1 end
        local p = mp.Process{target = function() helper() end}
        p:start(); p:join()
      ]])
      f:close()
      local out = io.popen("LUAMP_START_METHOD=" .. method .. " " .. exe .. " " .. script .. " 2>&1"):read("a")
      os.remove(script)
      assert(out:find("under the " .. method .. " start method", 1, true), out)
      assert(out:find("global 'helper'", 1, true), out)
    end
  end
end

print("ok")
