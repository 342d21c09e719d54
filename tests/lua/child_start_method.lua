-- A child's get_start_method() reports the method that started it, also
-- when that is not the parent's default (a fork context under a spawn
-- default, and the other way round); a child's stdin reads /dev/null.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

for _, method in ipairs(mp.get_all_start_methods()) do
  local p = mp.get_context(method).Process{target = function(expected)
    local got = mp.get_start_method()
    if got ~= expected then
      io.stderr:write("child started by ", expected, " reports ", tostring(got), "\n")
      os.exit(2)
    end
    -- stdin is /dev/null: end of file at once, whatever the parent's stdin is.
    if io.read("l") ~= nil or io.stdin:read("a") ~= "" then os.exit(3) end
  end, args = {method}}
  p:start()
  p:join(30)
  assert(p.exitcode == 0, method .. ": child exit code " .. tostring(p.exitcode))
end
