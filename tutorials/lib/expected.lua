-- The `.expected` format of the tutorials (described in tutorials/README.md),
-- shared by the tutorial harness (tests/tools/check_tutorial.lua) and the
-- exercise checker (tutorials/exercises/check.lua):
--   @exit N                   expected exit status (default 0)
--   {{pid}} {{int}} {{num}} {{hex}} {{*}}   placeholders inside a line
--   <<< unordered ... >>>     the lines between may come in any order
local M = {}

-- Text -> its lines (a final newline does not make an empty last line).
function M.lines(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
  if lines[#lines] == "" then lines[#lines] = nil end
  return lines
end

local placeholders = {
  pid = "%d+", int = "%-?%d+", num = "%-?[%d%.]+[eE]?[%-+]?%d*", hex = "0?x?%x+", ["*"] = ".-",
}

local function escape(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- An expected line -> a Lua pattern for the whole actual line.  `where`
-- names the file in the error for an unknown placeholder.
function M.to_pattern(line, where)
  local out, pos = {}, 1
  while true do
    local s, e, name = line:find("{{([%w%*]+)}}", pos)
    if not s then break end
    out[#out + 1] = escape(line:sub(pos, s - 1))
    out[#out + 1] = placeholders[name]
        or error("unknown placeholder {{" .. name .. "}}" .. (where and (" in " .. where) or ""), 0)
    pos = e + 1
  end
  out[#out + 1] = escape(line:sub(pos))
  return "^" .. table.concat(out) .. "$"
end

-- Expected text -> items, expected exit status.  An item is a line
-- {text=, pattern=} or an unordered block {unordered = true, lines = {...}}.
function M.parse(text, where)
  local items, block, exit_status = {}, nil, 0
  for _, line in ipairs(M.lines(text)) do
    local code = line:match("^@exit%s+(%-?%d+)$")
    if code then
      exit_status = tonumber(code)
    elseif line == "<<< unordered" then
      block = {unordered = true, lines = {}}
    elseif line == ">>>" and block then
      items[#items + 1] = block
      block = nil
    elseif block then
      block.lines[#block.lines + 1] = {text = line, pattern = M.to_pattern(line, where)}
    else
      items[#items + 1] = {text = line, pattern = M.to_pattern(line, where)}
    end
  end
  if block then error((where or "expected output") .. ": unterminated <<< unordered block", 0) end
  return items, exit_status
end

-- Matches an unordered block's patterns to actual lines, one line each
-- (bipartite matching, so overlapping placeholders cannot mislead it).
-- Returns true, or false and the text of a pattern with no line.
function M.match_unordered(patterns, lines)
  local owner = {}  -- line index -> pattern index
  local function try(pi, seen)
    for li = 1, #lines do
      if not seen[li] and lines[li]:find(patterns[pi].pattern) then
        seen[li] = true
        if not owner[li] or try(owner[li], seen) then
          owner[li] = pi
          return true
        end
      end
    end
    return false
  end
  for pi = 1, #patterns do
    if not try(pi, {}) then return false, patterns[pi].text end
  end
  return true
end

return M
