-- start methods: fork spawn
-- A proxy stored inside another managed object is released when that
-- object is freed: the server drops its referent (an idle request worker
-- used to keep its last arguments, and with them the stored proxy, alive).
local mp = require "multiprocessing"

local m <close> = mp.Manager()
local base = m:_debug_info()
local function settled()
  collectgarbage(); collectgarbage()
  local t0 = os.monotonic()
  while m:_debug_info() ~= base and os.monotonic() - t0 < 10 do
    collectgarbage()
    os.sleep(0.02)
  end
  return m:_debug_info() - base
end

do local d, l = m:dict(), m:list(); d.x = l end
assert(settled() == 0, "a list stored in a freed dict stays alive")
do local l1, l2 = m:list(), m:list(); l1:append(l2) end
assert(settled() == 0, "a list appended to a freed list stays alive")
do
  local d, l = m:dict(), m:list()
  local p = mp.Process{target = function(d, l) d.x = l end, args = {d, l}}
  p:start()
  p:join(30)
  assert(p.exitcode == 0)
end
assert(settled() == 0, "a proxy stored by a child stays alive")
print("ok")
