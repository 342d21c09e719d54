-- luamp.help: what the global help() shows, read from the API pages
-- docs/api/*.md that the build compiles in (src/repl/help.cpp passes them
-- as the chunk's argument: {[file name] = Markdown text}).
--
-- The convention (docs/api/README.md): every documented name has a level-3
-- heading whose first token is the name, e.g. "### mp.Queue([maxsize])",
-- "### Queue:get([block [, timeout]])", "### Process.exitcode"; the text
-- under it, up to the next heading, is its help text.
--
--   local h = require "luamp.help"
--   h.show(mp.Queue)            -- prints the section, as help(mp.Queue) does
--   h.lookup("Queue.get")       --> entry {name=, heading=, body=, file=} or nil
--   h.names()                   --> every documented name, sorted
local docs = ...

local M = {}

-- Headings that start with a standard function describe how it treats
-- luamp objects ("### tostring(process)"): part of the page, not a name.
local kNotNames = {
  tostring = true, pairs = true, ipairs = true, print = true, type = true, next = true,
  select = true, rawlen = true, rawequal = true, getmetatable = true,
}

local index    -- name -> entry; built on first use
local order    -- documented names in page order
local pages    -- {file=, title=, names={...}} in file-name order
local duplicates

-- Splits every page into sections (see the convention above).  Headings
-- inside ``` fences are code, not headings.
local function parse()
  if index then return end
  index, order, pages, duplicates = {}, {}, {}, {}
  local files = {}
  for name in pairs(docs) do files[#files + 1] = name end
  table.sort(files)
  for _, file in ipairs(files) do
    local page = {file = file, title = file, names = {}}
    pages[#pages + 1] = page
    local cur, fence
    local function finish()
      if cur then
        cur.body = table.concat(cur.lines, "\n"):gsub("^[ \t]*\n+", ""):gsub("%s+$", "")
        cur.lines = nil
      end
      cur = nil
    end
    for line in (docs[file] .. "\n"):gmatch("(.-)\r?\n") do
      if line:match("^%s*```") or line:match("^%s*~~~") then fence = not fence end
      local level, heading
      if not fence then level, heading = line:match("^(#+)%s+(.-)%s*$") end
      if level then
        finish()
        if #level == 1 and page.title == file then page.title = heading end
        if #level == 3 then
          local h = heading:gsub("`", "")
          local name = h:match("^[%w_%.:]+")
          if name and not kNotNames[name] then
            cur = {name = name, heading = h, file = file, lines = {}}
            if index[name] then
              duplicates[#duplicates + 1] = name .. " (" .. index[name].file .. ", " .. file .. ")"
            else
              index[name] = cur
              order[#order + 1] = name
              page.names[#page.names + 1] = name
            end
          end
        end
      elseif cur then
        cur.lines[#cur.lines + 1] = line
      end
    end
    finish()
  end
end

-- The spellings a name may be documented under: with or without "mp.", and
-- "Type.method" for "Type:method" (and back).
local function variants(name)
  local out, seen = {}, {}
  local function add(n)
    if not seen[n] then
      seen[n] = true
      out[#out + 1] = n
    end
  end
  local bases = {name, name:sub(1, 3) == "mp." and name:sub(4) or "mp." .. name}
  for _, n in ipairs(bases) do
    add(n)
    local head, sep, tail = n:match("^(.*)([%.:])([^%.:]+)$")
    if head then add(head .. (sep == "." and ":" or ".") .. tail) end
  end
  return out
end

local function find_exact(name)
  for _, n in ipairs(variants(name)) do
    if index[n] then return index[n] end
  end
end

-- Documented names that end with `name` after a "." or ":" ("get" ->
-- "Queue:get", "SimpleQueue:get", ...).
local function similar(name)
  local out = {}
  for _, n in ipairs(order) do
    for _, v in ipairs(variants(name)) do
      if n:sub(-#v - 1) == "." .. v or n:sub(-#v - 1) == ":" .. v then
        out[#out + 1] = n
        break
      end
    end
  end
  return out
end

-- A class of multiprocessing.class (or a type built like one): a table
-- that names its instances' type.
local function is_class(t)
  return type(t) == "table" and type(rawget(t, "__name")) == "string"
end

-- The methods table of a native type's metatable: `__methods` if set, else
-- the `__index` table, else (an `__index` C function that serves fields,
-- then methods) the first table among that function's upvalues.
function M.methods_of(mt)
  if type(mt) ~= "table" then return nil end
  local m = rawget(mt, "__methods")
  if type(m) == "table" then return m end
  local idx = rawget(mt, "__index")
  if type(idx) == "table" then return idx end
  if type(idx) == "function" and debug.getinfo(idx, "S").what == "C" then
    for i = 1, 255 do
      local name, v = debug.getupvalue(idx, i)
      if name == nil then break end
      if type(v) == "table" then return v end
    end
  end
end

local function sorted_keys(t)
  local keys = {}
  for k in next, t do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end

-- value -> list of names it may be documented under, best first:
-- the mp table (breadth first, so mp.Value beats mp.sharedctypes.Value),
-- methods of mp's classes ("Process:start", then the base classes' names),
-- methods of registered native types ("mp.Queue" metatable -> "Queue:get"),
-- the host's additions, then Lua's standard library.
local function names_of_values()
  local names = {}
  local function add(v, n)
    if v == nil then return end
    local l = names[v]
    if not l then
      l = {}
      names[v] = l
    end
    l[#l + 1] = n
  end
  local function add_class(cls, short)
    for _, k in ipairs(sorted_keys(cls)) do
      local f = rawget(cls, k)
      if type(f) == "function" then
        add(f, short .. ":" .. k)
        local parent = rawget(cls, "__parent")
        while type(parent) == "table" do
          if type(rawget(parent, "__name")) == "string" then add(f, rawget(parent, "__name") .. ":" .. k) end
          parent = rawget(parent, "__parent")
        end
      end
    end
  end

  local seen_class = {}
  local ok, mp = pcall(require, "multiprocessing")
  if ok and type(mp) == "table" then
    local queue, seen = {{mp, "mp"}}, {[mp] = true}
    local head = 1
    while queue[head] do
      local t, path = queue[head][1], queue[head][2]
      head = head + 1
      for _, k in ipairs(sorted_keys(t)) do
        local v = rawget(t, k)
        add(v, path .. "." .. k)
        if type(v) == "table" and not seen[v] then
          seen[v] = true
          if is_class(v) then
            seen_class[v] = true
            add_class(v, k)
          end
          if select(2, path:gsub("%.", "")) < 3 then queue[#queue + 1] = {v, path .. "." .. k} end
        end
      end
    end
  end

  -- Classes of the embedded modules that mp does not export by name
  -- (multiprocessing.managers' DictProxy, ...): their methods.
  local loaded = package.loaded
  for _, modname in ipairs(sorted_keys(loaded)) do
    local mod = loaded[modname]
    if modname:match("^multiprocessing%.") and type(mod) == "table" and mod ~= mp then
      for _, k in ipairs(sorted_keys(mod)) do
        local v = rawget(mod, k)
        if is_class(v) and not seen_class[v] then
          seen_class[v] = true
          add(v, k)
          add_class(v, k)
        end
      end
    end
  end

  local registry = debug.getregistry()
  for _, k in ipairs(sorted_keys(registry)) do
    local mt = registry[k]
    if k:match("^mp%.[%w_%.]+$") and type(mt) == "table" and rawget(mt, "__name") == k then
      local short = k:sub(4)
      add(mt, k)
      local methods = M.methods_of(mt)
      if methods then
        for _, m in ipairs(sorted_keys(methods)) do
          if type(rawget(methods, m)) == "function" then add(rawget(methods, m), short .. ":" .. m) end
        end
      end
    end
  end

  add(rawget(_G, "repr"), "repr")
  add(rawget(_G, "help"), "help")
  for _, f in ipairs {"getpid", "getppid", "sleep", "monotonic"} do add(os[f], "os." .. f) end
  return names
end

-- Names of Lua's standard library functions, for a helpful "not ours" reply.
local function stdlib_name(v)
  for _, lib in ipairs {"_G", "string", "table", "math", "io", "os", "coroutine", "utf8", "debug", "package"} do
    local t = lib == "_G" and _G or rawget(_G, lib)
    if type(t) == "table" then
      for _, k in ipairs(sorted_keys(t)) do
        if rawget(t, k) == v and type(v) == "function" then
          return lib == "_G" and k or lib .. "." .. k
        end
      end
    end
  end
end

-- lookup(x) -> entry or nil, info.  x is a name (string) or a value.  When
-- nothing is documented, info is {names = {...}} (what x is known as) and,
-- for a string, {similar = {...}} (documented names ending in it).
function M.lookup(x)
  parse()
  if type(x) == "string" then
    local e = find_exact(x)
    if e then return e end
    local sim = similar(x)
    if #sim == 1 then return index[sim[1]] end
    return nil, {similar = sim}
  end
  local names = names_of_values()
  local cands = {}
  local function add_names(v)
    for _, n in ipairs(names[v] or {}) do cands[#cands + 1] = n end
  end
  -- A class and its bases, by value and by __name.
  local function add_class_chain(c)
    for _ = 1, 20 do
      if type(c) ~= "table" then return end
      add_names(c)
      local name = rawget(c, "__name")
      if type(name) == "string" then cands[#cands + 1] = name end
      c = rawget(c, "__parent")
    end
  end
  add_names(x)
  if type(x) == "table" and is_class(x) then add_class_chain(x) end
  if type(x) == "table" or type(x) == "userdata" then
    -- An object (or a class made by a context or :extend): its class or type.
    add_class_chain(debug.getmetatable(x))
    -- A manager's proxy: one metatable for all, the class in `_class`.
    if type(x) == "table" then add_class_chain(rawget(x, "_class")) end
  end
  for _, n in ipairs(cands) do
    local e = find_exact(n)
    if e then return e end
  end
  return nil, {names = cands}
end

-- text(x) -> "heading\n\nbody" of x's section, or nil.
function M.text(x)
  local e = M.lookup(x)
  if e then return e.heading .. (e.body ~= "" and "\n\n" .. e.body or "") end
end

-- Every documented name, sorted.
function M.names()
  parse()
  local out = {}
  for i, n in ipairs(order) do out[i] = n end
  table.sort(out)
  return out
end

-- Names documented twice, as "name (first file, second file)".
function M.duplicates()
  parse()
  return {table.unpack(duplicates)}
end

local function out(s)
  io.stdout:write(s, "\n")
end

-- Appends words to lines no wider than 78 columns, each starting with `indent`.
local function wrap(words, indent)
  local lines, line = {}, indent
  for i, w in ipairs(words) do
    local piece = w .. (i < #words and "," or "")
    if #line + #piece + 1 > 78 and line ~= indent then
      lines[#lines + 1] = line
      line = indent
    end
    line = line .. (line == indent and "" or " ") .. piece
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

-- help(): the text of help itself (how to use the REPL), then the entry
-- points each page documents.
local function overview()
  parse()
  local e = index.help
  out(e and e.body or "help(x) shows the documentation of x.")
  out("")
  out("Documented entry points (help(name) for any of them):")
  for _, page in ipairs(pages) do
    local words = {}
    for _, n in ipairs(page.names) do
      if not n:find(":", 1, true) and (n:sub(1, 3) == "mp." or n:sub(1, 3) == "os." or not n:find(".", 1, true)) then
        words[#words + 1] = n
      end
    end
    if #words > 0 then
      out("  " .. page.title .. ":")
      out(wrap(words, "    "))
    end
  end
end

-- help([x]): prints the documentation of x (a value or a name), or the
-- overview when called with no argument.
function M.show(...)
  if select("#", ...) == 0 then return overview() end
  local x = ...
  local e, info = M.lookup(x)
  if e then
    out(M.text(x))
    return
  end
  if type(x) == "string" then
    local msg = string.format("No documentation for %q.", x)
    if #info.similar > 0 then msg = msg .. " Did you mean: " .. table.concat(info.similar, ", ") .. "?" end
    out(msg)
    return
  end
  if #info.names > 0 then
    -- A type without a section of its own: point to its documented members.
    local members = {}
    for _, n in ipairs(info.names) do
      local short = n:gsub("^mp%.", "")
      for _, d in ipairs(order) do
        if d:sub(1, #short + 1) == short .. ":" or d:sub(1, #short + 1) == short .. "." then
          members[#members + 1] = d
        end
      end
      if #members > 0 then break end
    end
    local msg = string.format("No documentation for %s (a %s).", info.names[1], type(x))
    if #members > 0 then msg = msg .. " Its documented members:\n" .. wrap(members, "  ") end
    out(msg)
    return
  end
  local std = stdlib_name(x)
  if std then
    out(string.format("%s is part of Lua's standard library: see the Lua 5.4 reference manual, "
      .. "https://www.lua.org/manual/5.4/manual.html#pdf-%s", std, std))
    return
  end
  out(string.format("No documentation for %s (a %s). help() lists what is documented.",
    tostring(x), type(x)))
end

return M
