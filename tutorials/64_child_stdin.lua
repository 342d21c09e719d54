-- 64_child_stdin: DOC-41, from Python's multiprocessing docs, "Programming
-- guidelines › Beware of replacing sys.stdin".  Python's fragments show how
-- a child's stdin is replaced: the child closes sys.stdin and reopens it on
-- os.devnull, keeping file descriptor 0 itself open.
--
-- luamp does the same in every child, under every start method: io.stdin
-- and the default input of io.read are /dev/null, so a child reads end of
-- file at once and never takes input meant for its parent (nor the lines
-- already buffered in the parent's io.stdin, which a forked child would
-- otherwise copy and consume).  Descriptor 0 stays open, as in Python, so
-- a command the child runs with os.execute still reads the real stdin.
--
-- To show it with known input, the tutorial runs itself again with two
-- lines piped into its stdin.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

if arg[1] ~= "--with-input" then
  io.stdout:flush()
  local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
  local ok = os.execute(string.format("printf 'line one\\nline two\\n' | %s %s --with-input",
                                      q(arg[-1]), q(arg[0])))
  print("the inner run succeeded: " .. tostring(ok))
  return
end

-- The inner run: stdin holds "line one" and "line two".
print("parent read: " .. io.read("l"))

local p = mp.Process{target = function()
  print("child read: " .. tostring(io.read("l")))
  print("child's io.stdin at end of file: " .. tostring(io.stdin:read("a") == ""))
end}
p:start()
p:join(30)

print("parent read: " .. io.read("l"))
