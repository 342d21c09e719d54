-- Exercise 3, a solution.  nil crosses a Connection like any value, so it
-- can end the stream (the usual sentinel in luamp).  Note that x * x of an
-- integer stays an integer (x ^ 2 would be the float 4.0).
local mp = require "multiprocessing"

local function worker(conn)
  while true do
    local x = conn:recv()
    if x == nil then return end
    conn:send(x * x)
  end
end

local parent_end, child_end = mp.Pipe()
local p = mp.Process{target = worker, args = {child_end}}
p:start()

local squares = {}
for x = 1, 5 do
  parent_end:send(x)
  squares[#squares + 1] = parent_end:recv()
end
parent_end:send(nil)

p:join(10)
print("squares:", repr(squares))
print("worker exit code:", p.exitcode)
