-- Process objects (API.md, "Processes and contexts").  This file holds the
-- Process class and the per-process bookkeeping (current, parent, children).
local class = require "multiprocessing.class"
local core = require "multiprocessing.core"

local M = {}

local Process = class.new("Process")
M.Process = Process

function Process.__tostring(p)
  local state
  if p._exitcode ~= nil then
    state = "stopped exitcode=" .. tostring(p._exitcode)
  elseif p._started then
    state = "started"
  else
    state = "initial"
  end
  local parts = {string.format('<Process name="%s"', p.name)}
  if p.pid then parts[#parts + 1] = "pid=" .. p.pid end
  if p._parent_pid then parts[#parts + 1] = "parent=" .. p._parent_pid end
  if p.daemon then parts[#parts + 1] = "daemon" end
  parts[#parts + 1] = state .. ">"
  return table.concat(parts, " ")
end

-- The object describing this process (MainProcess in the main one).
local current = setmetatable({
  name = "MainProcess",
  pid = core.getpid(),
  daemon = false,
  _started = true,
  _identity = {},
  _children_counter = 0,
}, Process)

function M.current_process()
  return current
end

return M
