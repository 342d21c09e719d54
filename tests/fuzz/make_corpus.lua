-- Writes seed messages for fuzz_codec into the directory given:
--   build/luamp tests/fuzz/make_corpus.lua corpus/
local dir = assert(arg[1], "usage: make_corpus.lua <dir>")
local mp = require "multiprocessing"
local Point = {}
Point.__index = Point
mp.register_class("test.Point", Point)
local Red = {}
function Red.__reduce(o) return o.v end
function Red.__rebuild(v) return setmetatable({v = v}, Red) end
mp.register_class("test.Red", Red)
local up, shared = 5, {1}
local function f(x) return x + up, shared end
local function g() shared = {2}; return up end
local c = {n = 1}; c.self = c
local seeds = {
  nil, true, 12345678901, -1.5, 0/0, "str\0ing", string.rep("long", 40),
  {42, nil, "hello", x = {y = {z = {}}}, [1.5] = false},
  {f, g, f}, c,
  {setmetatable({x = 1, y = 2}, Point), Point, setmetatable({v = {1, 2}}, Red)},
  {math.sqrt, print, mp.cpu_count, mp, string},
  mp.TimeoutError("t", {traceback = "tb"}),
  {{id = 1, name = "a"}, {id = 2, name = "b"}, {id = 3, name = "c"}},
  function(a, b) local t = {} for i = a, b do t[#t + 1] = i * 2.5 end return t end,
}
for i = 1, 15 do
  local out = assert(io.open(string.format("%s/seed%02d", dir, i), "wb"))
  out:write(mp.dumps(seeds[i]))
  out:close()
end
