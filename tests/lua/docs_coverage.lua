-- The gate that keeps docs/api and the code together (docs/api/README.md):
--  1. every function reachable from the `mp` table (sub-tables such as
--     mp.connection too), every class there and its own methods, and every
--     method of a native type registered as "mp.<Type>" has a help text;
--  2. every documented name that starts with "mp." exists;
--  3. no name is documented twice.
-- The host's additions (repr, help, os.*) are checked too.  It names what is
-- missing, so run it after adding a function.
local mp = require "multiprocessing"
local help = require "luamp.help"

-- Reachable but not documented on purpose, with the reason.
local skip = {
  -- Every class of multiprocessing.class has these two: `new` is what
  -- calling the class runs (documented as the class call, e.g.
  -- "mp.Queue(...)") and `extend` makes a subclass (documented where
  -- subclassing is meant: ProcessError:extend, mp.Process:extend, ...).
  new = "class machinery: the constructor is documented as the class call",
  extend = "class machinery: documented where subclassing is part of the API",
}
-- Functions whose pages are being written by the engineers who own them:
-- allowed to lack a section for now, and noted on every run (an entry that
-- is documented is noted too: delete it then).
local pending = {}
-- Documented "mp." names that are not values of mp on purpose.
local skip_documented = {}

local problems = {}
local function problem(fmt, ...)
  problems[#problems + 1] = string.format(fmt, ...)
end

local function sorted_keys(t)
  local keys = {}
  for k in next, t do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

-- A class of multiprocessing.class (or a type built like one): a table
-- that names its instances' type.
local function is_class(t)
  return type(t) == "table" and type(rawget(t, "__name")) == "string"
end

local checked = 0
local function need_doc(value, label)
  checked = checked + 1
  local documented = help.lookup(value) ~= nil
  if pending[label] then
    if documented then
      io.stderr:write("note: ", label, " is documented now: delete it from `pending`\n")
    else
      io.stderr:write("note: ", label, " has no help text yet (", pending[label], ")\n")
    end
  elseif not documented then
    problem("no help text for %s (add a section to docs/api)", label)
  end
end

-- 1a. The mp table, breadth first.  Names starting with "_" are private.
local queue, seen = {{mp, "mp"}}, {[mp] = true}
local head = 1
while queue[head] do
  local t, path = queue[head][1], queue[head][2]
  head = head + 1
  for _, k in ipairs(sorted_keys(t)) do
    local v = rawget(t, k)
    local label = path .. "." .. k
    if k:sub(1, 1) ~= "_" and not seen[v] then
      if type(v) == "function" then
        seen[v] = true
        need_doc(v, label)
      elseif is_class(v) then
        seen[v] = true
        need_doc(v, label)
        for _, m in ipairs(sorted_keys(v)) do
          local f = rawget(v, m)
          if type(f) == "function" and m:sub(1, 1) ~= "_" and not skip[m] then
            need_doc(f, k .. ":" .. m)
          end
        end
      elseif type(v) == "table" then
        seen[v] = true
        queue[#queue + 1] = {v, label}
      end
    end
  end
end

-- 1b. Native types: the methods of their metatables (the __index table,
-- or the methods table an __index function serves: help.methods_of).
local registry = debug.getregistry()
for _, name in ipairs(sorted_keys(registry)) do
  local mt = registry[name]
  if name:match("^mp%.") and type(mt) == "table" and rawget(mt, "__name") == name then
    local methods = help.methods_of(mt)
    if methods then
      for _, m in ipairs(sorted_keys(methods)) do
        local f = rawget(methods, m)
        if type(f) == "function" and m:sub(1, 1) ~= "_" and not skip[m] then
          need_doc(f, name:sub(4) .. ":" .. m)
        end
      end
    end
  end
end

-- 1c. The host's additions.
need_doc(repr, "repr")
need_doc(_G.help, "help")
for _, f in ipairs {"getpid", "getppid", "sleep", "monotonic"} do need_doc(os[f], "os." .. f) end

-- 2. Documented mp names exist ("mp.a.b", "mp.Process:extend").
for _, name in ipairs(help.names()) do
  if name:sub(1, 3) == "mp." and not skip_documented[name] then
    local v = mp
    for seg in name:sub(4):gmatch("[^%.:]+") do
      local ok, x = pcall(function() return v[seg] end)
      v = ok and x or nil
      if v == nil then break end
    end
    if v == nil then problem("%s is documented but mp has no such value", name) end
  end
end

-- 3. Each name once.
for _, d in ipairs(help.duplicates()) do problem("documented twice: %s (keep one)", d) end

if #problems > 0 then
  io.stderr:write(table.concat(problems, "\n"), "\n")
  error(#problems .. " documentation problem(s), listed above", 0)
end
print(string.format("ok: %d functions and classes documented, %d names in docs/api", checked, #help.names()))
