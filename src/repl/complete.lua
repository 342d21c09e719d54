-- luamp.complete: the candidates for tab completion in the REPL
-- (src/repl/repl.cpp calls the returned function with the word being
-- completed).  Completes globals and keywords, fields after "." and methods
-- after ":", following the __index tables of metatables (classes, native
-- types, strings).  It never calls a metamethod, so completing cannot run
-- user code.
--
--   complete("mp.cpu_c")   --> {"mp.cpu_count"}, {"function"}
--   complete("q:ge")       --> {"q:get", "q:get_nowait"}, {"function", "function"}
local keywords = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}

local kMaxChain = 20  -- __index links followed, against loops

local function is_identifier(s)
  return s:match("^[%a_][%w_]*$") ~= nil
end

-- The table where v's missing keys are looked up, or nil: the __index
-- table of its metatable.  An __index function is never called; instead
--   * `__methods` in the metatable, if it is a table, is used;
--   * a C function (a native type serving fields, then methods) is read
--     for its first table upvalue, its methods;
--   * a Lua function in a class (a metatable with __name, such as
--     Process) means the class itself holds the methods.
local function index_table(v)
  local mt = debug.getmetatable(v)
  if type(mt) ~= "table" then return nil end
  local idx = rawget(mt, "__methods")
  if type(idx) == "table" then return idx end
  idx = rawget(mt, "__index")
  if type(idx) == "function" then
    if debug.getinfo(idx, "S").what == "C" then
      for i = 1, 255 do
        local name, up = debug.getupvalue(idx, i)
        if name == nil then return nil end
        if type(up) == "table" then return up end
      end
    elseif type(rawget(mt, "__name")) == "string" then
      return mt
    end
    return nil
  end
  return type(idx) == "table" and idx or nil
end

-- v[k] without calling metamethods: raw fields, then __index tables.
local function get(v, k)
  for _ = 1, kMaxChain do
    if type(v) == "table" then
      local x = rawget(v, k)
      if x ~= nil then return x end
    end
    v = index_table(v)
    if v == nil then return nil end
  end
end

-- Calls fn(key, value) for the string keys of v and of its __index chain
-- (a key seen first hides the same key further down).
local function each_field(v, fn)
  local seen, tables = {}, {}
  for _ = 1, kMaxChain do
    if type(v) == "table" and not tables[v] then
      tables[v] = true
      for k, x in next, v do
        if type(k) == "string" and not seen[k] then
          seen[k] = true
          fn(k, x)
        end
      end
    end
    v = index_table(v)
    if v == nil or tables[v] then return end
  end
end

-- complete(word) -> matches, types: the completed words (sorted) and the
-- type of each one's value ("keyword" for keywords).
return function(word)
  local path, sep, prefix = word:match("^(.-)([%.:])([%w_]*)$")
  local base
  if path then
    if path == "" then return {}, {} end
    base = _G
    for seg in (path .. "."):gmatch("(.-)%.") do
      if not is_identifier(seg) then return {}, {} end
      base = get(base, seg)
      if base == nil then return {}, {} end
    end
  else
    prefix, path, sep, base = word, "", "", _G
  end

  local found = {}
  local hidden = prefix:sub(1, 1) ~= "_"  -- hide _private and __meta names unless asked
  each_field(base, function(k, v)
    if k:sub(1, #prefix) ~= prefix or not is_identifier(k) then return end
    if hidden and (k:sub(1, 2) == "__" or (sep == ":" and k:sub(1, 1) == "_")) then return end
    if sep == ":" and type(v) ~= "function" then return end
    found[k] = type(v)
  end)
  if sep == "" then
    for _, k in ipairs(keywords) do
      if k:sub(1, #prefix) == prefix and not found[k] then found[k] = "keyword" end
    end
  end

  local keys = {}
  for k in pairs(found) do keys[#keys + 1] = k end
  table.sort(keys)
  local matches, types = {}, {}
  for i, k in ipairs(keys) do
    matches[i] = path .. sep .. k
    types[i] = found[k]
  end
  return matches, types
end
