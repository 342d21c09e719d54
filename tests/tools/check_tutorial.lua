-- The tutorial harness: runs one tutorial with stdout a pipe and compares
-- what it prints with its .expected file.  Usage (ctest does this):
--
--   luamp check_tutorial.lua <luamp executable> <tutorial.lua> [start method]
--
-- The start method reaches the tutorial as LUAMP_START_METHOD.  The format
-- of .expected files is described in tutorials/README.md:
--   @exit N                   expected exit status (default 0), at the top
--   {{pid}} {{int}} {{num}} {{hex}} {{*}}   placeholders inside a line
--   <<< unordered ... >>>     the lines between may come in any order
local exe, tutorial, method = arg[1], arg[2], arg[3] or "fork"
assert(exe and tutorial, "usage: check_tutorial.lua <luamp> <tutorial.lua> [method]")

-- The .expected format lives with the tutorials: tutorials/lib/expected.lua.
local tutorial_dir = tutorial:match("^(.*)/[^/]*$") or "."
package.path = tutorial_dir .. "/lib/?.lua;" .. package.path
local expected = require "expected"

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end


local expected_path = tutorial:gsub("%.lua$", ".expected")
local f = assert(io.open(expected_path, "rb"), "missing " .. expected_path)
local expected_text = f:read("a")
f:close()

local items, expected_exit = expected.parse(expected_text, expected_path)

-- Run the tutorial.
local cmd = string.format("LUAMP_START_METHOD=%s %s %s", shell_quote(method), shell_quote(exe),
                          shell_quote(tutorial))
local p = assert(io.popen(cmd, "r"))
local output = p:read("a")
local _, how, status = p:close()
local actual = expected.lines(output)

local failures = {}
local function fail(msg) failures[#failures + 1] = msg end

if how == "exit" and status ~= expected_exit then
  fail(string.format("exit status %d, expected %d", status, expected_exit))
elseif how == "signal" then
  fail("killed by signal " .. status)
end


local pos = 1
for _, item in ipairs(items) do
  if #failures > 0 then break end
  if item.unordered then
    local n = #item.lines
    local chunk = {table.unpack(actual, pos, pos + n - 1)}
    if #chunk < n then
      fail(string.format("output ended inside an unordered block at line %d", pos))
    else
      local ok, missing = expected.match_unordered(item.lines, chunk)
      if not ok then
        fail(string.format("unordered block at output lines %d-%d has no line for: %s", pos,
                           pos + n - 1, missing))
      end
    end
    pos = pos + n
  else
    local line = actual[pos]
    if line == nil then
      fail(string.format("output ended at line %d, expected: %s", pos, item.text))
    elseif not line:find(item.pattern) then
      fail(string.format("line %d differs\n  expected: %s\n  actual:   %s", pos, item.text, line))
    end
    pos = pos + 1
  end
end
if #failures == 0 and actual[pos] ~= nil then
  fail(string.format("unexpected output from line %d: %s", pos, actual[pos]))
end

if #failures > 0 then
  io.stderr:write(tutorial, " (", method, "): ", table.concat(failures, "\n"), "\n")
  io.stderr:write("---- full output ----\n", output, "---------------------\n")
  os.exit(1)
end
print(string.format("ok %s (%s): %d lines", tutorial, method, #actual))
