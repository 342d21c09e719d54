-- Keeps the docs' cross-references true: every relative link in docs/**.md
-- points to a file of the repository, every tutorial or exercise file that
-- the course pages (docs/course/) and the tutorial index name exists, and
-- every tutorial has a row in the index (tutorials/README.md).
-- Run from tests/lua (ctest's working directory); reads only the repository.
local root = "../.."

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function dir_of(path) return path:match("^(.*)/[^/]*$") or "." end

-- The .md files under docs/ (find is fine: this is a test, not luamp code).
local pages = {}
local p = assert(io.popen("cd " .. root .. " && find docs -name '*.md' | sort"))
for line in p:lines() do pages[#pages + 1] = line end
p:close()
assert(#pages > 0, "no docs found")

local problems = {}
local function problem(fmt, ...) problems[#problems + 1] = string.format(fmt, ...) end

for _, page in ipairs(pages) do
  local text = assert(read(root .. "/" .. page))
  text = text:gsub("\n```.-\n```", "")  -- code blocks hold examples, not links
  for target in text:gmatch("%]%(([^)%s]+)%)") do
    if not target:match("^%a[%w+.-]*:") and not target:match("^#") then
      local file = target:gsub("#.*$", "")
      local path = root .. "/" .. dir_of(page) .. "/" .. file
      if not exists(path) and not exists(path .. "/README.md") then
        problem("%s: link to a missing file: %s", page, target)
      end
    end
  end
  if page:match("^docs/course/") then
    for name in text:gmatch("`([%w_/]*%d%d_[%w_]+%.lua)") do
      local path = name:match("/") and name or "tutorials/" .. name
      if not exists(root .. "/" .. path) then problem("%s: names a missing file: %s", page, name) end
    end
    for n in text:gmatch("check%.lua (%d+)") do
      local found = false
      local ls = assert(io.popen("ls " .. root .. "/tutorials/exercises"))
      for f in ls:lines() do
        if tonumber(f:match("^(%d+)_.*%.lua$") or "") == tonumber(n) then found = true end
      end
      ls:close()
      if not found then problem("%s: names exercise %s, which does not exist", page, n) end
    end
  end
end

-- The tutorial index names only tutorials that exist, and every tutorial
-- has its row.
local index = read(root .. "/tutorials/README.md")
if index then
  local ls = assert(io.popen("ls " .. root .. "/tutorials"))
  for f in ls:lines() do
    if f:match("^%d%d_[%w_]+%.lua$") and not index:find("(" .. f .. ")", 1, true) then
      problem("tutorials/README.md: no row for %s", f)
    end
  end
  ls:close()
  for name in index:gmatch("%]%((%d%d_[%w_]+%.lua)%)") do
    if not exists(root .. "/tutorials/" .. name) then problem("tutorials/README.md: links a missing file: %s", name) end
  end
  for name in index:gmatch("`(%d%d_[%w_]+%.lua)`") do
    if not exists(root .. "/tutorials/" .. name) then problem("tutorials/README.md: names a missing file: %s", name) end
  end
end

if #problems > 0 then error("\n" .. table.concat(problems, "\n"), 0) end
print("ok: " .. #pages .. " pages")
