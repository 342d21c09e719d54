-- 44_connection_wait: DOC-37, Python's "Listeners and Clients › Examples"
-- (multiprocessing.connection.wait).  Four children each get the write end
-- of a one-way Pipe and send ten pairs {i, name}; the parent closes its copy
-- of every write end at once (otherwise it would never see end of file),
-- then waits on all read ends and prints what arrives.  A reader whose
-- children are done raises EOFError and leaves the list.  wait returns a new
-- table, so removing from `readers` while walking the result is safe.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"
local wait = mp.connection.wait

local function foo(w)
  for i = 0, 9 do
    w:send({i, mp.current_process().name})
  end
  w:close()
end

local readers = {}
for _ = 1, 4 do
  local r, w = mp.Pipe(false)
  readers[#readers + 1] = r
  local p = mp.Process{target = foo, args = {w}}
  p:start()
  -- Close our copy of the write end: the reader sees EOF once the child
  -- has closed its own.
  w:close()
end

local seen = {}
while #readers > 0 do
  for _, r in ipairs(wait(readers)) do
    local ok, msg = pcall(r.recv, r)
    if ok then
      print(repr(msg))
      local name = msg[2]
      -- each child's numbers arrive in order
      assert(msg[1] == (seen[name] or -1) + 1)
      seen[name] = msg[1]
    elseif mp.isinstance(msg, mp.EOFError) then
      for i, x in ipairs(readers) do
        if x == r then table.remove(readers, i) break end
      end
      r:close()
    else
      error(msg)
    end
  end
end
