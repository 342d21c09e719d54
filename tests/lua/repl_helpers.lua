-- The REPL's Lua helpers without a terminal: help lookups (names, values,
-- objects, what is not documented) and completion candidates.  The pty test
-- (tests/catch/test_repl.cpp) checks the same through the real REPL.
local mp = require "multiprocessing"
local help = require "luamp.help"
local complete = require "luamp.complete"

local function name_of(x)
  local e = help.lookup(x)
  return e and e.name
end

-- Names: as written, with or without "mp.", "." for ":", a unique suffix.
assert(name_of("os.sleep") == "os.sleep")
assert(name_of("mp.isinstance") == "mp.isinstance")
assert(name_of("isinstance") == "mp.isinstance")
assert(name_of("Connection.send") == "Connection:send")
assert(name_of("mp.Connection:send") == "Connection:send")
assert(name_of("recv_bytes_into") == "Connection:recv_bytes_into")
local e, info = help.lookup("close")  -- ambiguous: several types have close
assert(e == nil and #info.similar > 1, "close should be ambiguous")
assert(help.lookup("no_such_name_anywhere") == nil)

-- Values: functions, classes, methods of classes and native types, objects.
assert(name_of(mp.Pipe) == "mp.Pipe")
assert(name_of(mp.Empty) == "mp.Empty")
assert(name_of(mp.Empty("x")) == "mp.Empty")           -- an instance: its class
assert(name_of(mp.Empty.extend) == "ProcessError:extend") -- inherited name
assert(name_of(os.sleep) == "os.sleep")
assert(name_of(repr) == "repr")
assert(name_of(help.lookup) == nil)
do
  local a, b = mp.Pipe()
  assert(name_of(a.send) == "Connection:send")
  a:close()
  b:close()
end
assert(help.text(os.monotonic):match("^os%.monotonic%(%)\n\n"))
assert(#help.duplicates() == 0, table.concat(help.duplicates(), ", "))
local names = help.names()
for i = 2, #names do assert(names[i - 1] < names[i]) end

-- What help() prints, through a real luamp.
local exe = assert(os.getenv("LUAMP_EXE"))
local function help_output(expr)
  local p = assert(io.popen(exe .. " -e " .. string.format("%q", "mp = require 'multiprocessing' help(" .. expr .. ")")))
  local out = p:read("a")
  p:close()
  return out
end
assert(help_output("mp.isinstance"):find("^mp%.isinstance%(obj, cls%)\n"))
assert(help_output("'no_such_name'"):find('No documentation for "no_such_name".', 1, true))
assert(help_output("'close'"):find("Did you mean: ", 1, true))
assert(help_output("print"):find("Lua's standard library", 1, true))
assert(help_output("{}"):find("No documentation for table", 1, true))
assert(help_output("select(2, mp.Pipe())"):find("Its documented members:", 1, true))
assert(help_output(""):find("Documented entry points", 1, true))

-- Completion (of globals, as in the REPL where mp is one).
_G.mp = mp
local function cands(word)
  return table.concat((complete(word)), " ")
end
assert(cands("mp.cpu_c") == "mp.cpu_count")
assert(cands("string.fo") == "string.format")
assert(cands("wh") == "while")
assert(cands("nosuchglobal.x") == "")
nested = {inner = {deep = {value = 1, valid = true}}}
assert(cands("nested.inner.deep.va") == "nested.inner.deep.valid nested.inner.deep.value")
str = "abc"
assert(cands("str:up") == "str:upper")                 -- string metatable __index
local m, types = complete("mp.Empty:ext")
assert(m[1] == "mp.Empty:extend" and types[1] == "function")
local pa, pb = mp.Pipe()
conn = pa
assert(cands("conn:recv_bytes_i") == "conn:recv_bytes_into") -- behind an __index function
assert(cands("conn:__") == "")                          -- metamethods only on request
-- Completing never calls a metamethod.
trap = setmetatable({}, {__index = function() error("__index was called") end})
assert(cands("trap.x") == "")
assert(cands("trap.x.y") == "")
pa:close()
pb:close()
-- Objects of a class whose __index is a Lua function (Process): the class's
-- methods.
proc = mp.Process {target = function() end}
assert(cands("proc:is_al") == "proc:is_alive")
print("ok")
