-- Helpers shared by the Lua tests (this file is also run as a test of its
-- own by the glob; it only defines functions).
--
--   local check_error = require("testlib").check_error
--   local err = check_error("pattern", f, args...)  -- f must raise, matching
local M = {}

-- Calls f(...), which must raise an error whose tostring matches `pattern`
-- (a Lua pattern); returns the error.
function M.check_error(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error matching " .. pattern)
  assert(tostring(err):find(pattern), "error '" .. tostring(err) .. "' does not match " .. pattern)
  return err
end

return M
