-- mp.shared_memory.ShareableList and mp.managers.SharedMemoryManager,
-- composed in Lua over the native SharedMemory (src/mp/shared_memory.cpp).
-- init.lua puts them into mp.shared_memory and mp.managers.
--
-- A ShareableList's block is self-describing, so another process can
-- attach it by name: a header ("LSL1", item count), one 16-byte slot per
-- item (type, length, capacity, offset), then the items' bytes.  A slot's
-- capacity is fixed when the list is made (8 bytes, or a string's length
-- rounded up to 8); a later value must fit in it, as in Python.
local core = require "multiprocessing.core"
local class = require "multiprocessing.class"

local M = {}

local MAGIC = "LSL1"
local HEADER = 8
local SLOT = 16
local T_NIL, T_FALSE, T_TRUE, T_INT, T_FLOAT, T_STR = 0, 1, 2, 3, 4, 5

-- The type code and bytes of a storable value; errors name `what`.
local function encode_item(v, what)
  local t = type(v)
  if v == nil then return T_NIL, "" end
  if t == "boolean" then return v and T_TRUE or T_FALSE, "" end
  if math.type(v) == "integer" then return T_INT, string.pack("<i8", v) end
  if math.type(v) == "float" then return T_FLOAT, string.pack("<d", v) end
  if t == "string" then return T_STR, v end
  error(what .. ": cannot store a " .. t .. " (nil, boolean, number or string expected)", 3)
end

local function decode_item(typ, bytes)
  if typ == T_NIL then return nil end
  if typ == T_FALSE then return false end
  if typ == T_TRUE then return true end
  if typ == T_INT then return (string.unpack("<i8", bytes)) end
  if typ == T_FLOAT then return (string.unpack("<d", bytes)) end
  return bytes
end

local ShareableList = class.new("ShareableList")
M.ShareableList = ShareableList

-- ShareableList(seq_or_nil [, {name=}]): a new block holding seq's items
-- (seq.n counts trailing nils), or, with seq nil, the list already stored
-- in the block `name`.  seq may be a table, an Array or a ShareableList.
function ShareableList:new(seq, opts)
  local name = type(opts) == "table" and opts.name or nil
  if seq == nil then
    if name == nil then error("bad argument #1 to 'ShareableList' (sequence or {name=} expected)", 3) end
    local shm = core.SharedMemory(name, false, 0)
    if shm.size < HEADER or shm.buf:read(1, 4) ~= MAGIC then
      shm:close()
      error("ShareableList: block '" .. name .. "' does not hold a ShareableList", 3)
    end
    local n = string.unpack("<I4", shm.buf:read(5, 8))
    return setmetatable({shm = shm, _n = n}, self)
  end
  local n = type(seq) == "table" and seq.n or #seq
  local items, caps, total = {}, {}, 0
  for i = 1, n do
    local typ, bytes = encode_item(seq[i], "ShareableList")
    items[i] = {typ, bytes}
    caps[i] = math.max(8, (#bytes + 7) // 8 * 8)
    total = total + caps[i]
  end
  local data_start = HEADER + SLOT * n
  local shm = core.SharedMemory(name, true, data_start + math.max(total, 1))
  local buf = shm.buf
  buf:write(1, MAGIC .. string.pack("<I4", n))
  local offset = data_start
  for i = 1, n do
    local typ, bytes = items[i][1], items[i][2]
    buf:write(HEADER + SLOT * (i - 1) + 1, string.pack("<I1xxxI4I4I4", typ, #bytes, caps[i], offset))
    if #bytes > 0 then buf:write(offset + 1, bytes) end
    offset = offset + caps[i]
  end
  return setmetatable({shm = shm, _n = n}, self)
end

local function slot(sl, i)
  local typ, len, cap, off = string.unpack("<I1xxxI4I4I4", sl.shm.buf:read(HEADER + SLOT * (i - 1) + 1, HEADER + SLOT * i))
  return typ, len, cap, off
end

local function get(sl, i)
  if math.type(i) ~= "integer" or i < 1 or i > sl._n then return nil end
  local typ, len, _, off = slot(sl, i)
  local bytes = len > 0 and sl.shm.buf:read(off + 1, off + len) or ""
  return decode_item(typ, bytes)
end

local function set(sl, i, v)
  if math.type(i) ~= "integer" or i < 1 or i > sl._n then
    error("ShareableList index " .. tostring(i) .. " out of range (length " .. sl._n .. ")", 3)
  end
  local typ, bytes = encode_item(v, "ShareableList")
  local _, _, cap, off = slot(sl, i)
  if #bytes > cap then
    error("ShareableList: item exceeds available storage (" .. #bytes .. " bytes > " .. cap .. ")", 3)
  end
  if #bytes > 0 then sl.shm.buf:write(off + 1, bytes) end
  sl.shm.buf:write(HEADER + SLOT * (i - 1) + 1, string.pack("<I1xxxI4", typ, #bytes))
end

ShareableList.__index = function(sl, k)
  if math.type(k) == "integer" then return get(sl, k) end
  return ShareableList[k]
end
ShareableList.__newindex = function(sl, k, v)
  if math.type(k) == "integer" then return set(sl, k, v) end
  error("cannot set field " .. tostring(k) .. " of a ShareableList", 2)
end
ShareableList.__len = function(sl) return sl._n end

-- sl:totable([i [, j]]) -> items i..j (j clamped), holes kept (field n).
function ShareableList:totable(i, j)
  i = math.max(i or 1, 1)
  j = math.min(j or self._n, self._n)
  local t = {n = math.max(j - i + 1, 0)}
  for k = i, j do t[k - i + 1] = get(self, k) end
  return t
end

-- sl:count(v) -> how many items equal v.
function ShareableList:count(v)
  local c = 0
  for k = 1, self._n do
    if get(self, k) == v then c = c + 1 end
  end
  return c
end

-- sl:index(v) -> the first position of v; raises if absent.
function ShareableList:index(v)
  for k = 1, self._n do
    if get(self, k) == v then return k end
  end
  error("ShareableList:index: " .. repr(v) .. " not in this container", 2)
end

function ShareableList.__tostring(sl)
  local t = sl:totable()
  t.n = nil
  local parts = {}
  for k = 1, sl._n do parts[k] = repr(t[k]) end
  return "ShareableList({" .. table.concat(parts, ", ") .. "}, name=\"" .. sl.shm.name .. "\")"
end

-- SharedMemoryManager: tracks the blocks it made and frees them all in
-- shutdown() (or at the end of a <close> variable).  It runs in the calling
-- process: blocks are plain named SharedMemory, reachable by every process.
local SharedMemoryManager = class.new("SharedMemoryManager")
M.SharedMemoryManager = SharedMemoryManager

function SharedMemoryManager:new()
  return setmetatable({_blocks = {}, _shut = false}, self)
end

local function check_running(m, what)
  if m._shut then error(what .. ": the SharedMemoryManager was shut down", 3) end
end

function SharedMemoryManager:start() return self end

-- smm:SharedMemory(size) -> a new SharedMemory block owned by the manager.
function SharedMemoryManager:SharedMemory(size)
  check_running(self, "SharedMemory")
  local shm = core.SharedMemory(nil, true, size)
  self._blocks[#self._blocks + 1] = shm.name
  return shm
end

-- smm:ShareableList(seq) -> a new ShareableList owned by the manager.
function SharedMemoryManager:ShareableList(seq)
  check_running(self, "ShareableList")
  local sl = ShareableList(seq)
  self._blocks[#self._blocks + 1] = sl.shm.name
  return sl
end

-- smm:shutdown(): unlinks every block the manager made (idempotent).
function SharedMemoryManager:shutdown()
  if self._shut then return end
  self._shut = true
  for _, name in ipairs(self._blocks) do
    pcall(function()
      local shm = core.SharedMemory(name, false, 0)
      shm:unlink()
      shm:close()
    end)
  end
  self._blocks = {}
end

SharedMemoryManager.__close = SharedMemoryManager.shutdown
SharedMemoryManager.__gc = nil

function SharedMemoryManager.__tostring(m)
  return string.format("<SharedMemoryManager blocks=%d%s>", #m._blocks, m._shut and " shut down" or "")
end

return M
