-- The course's exercise checker: runs a student's exercise file in a child
-- luamp with a deadline and says what is still wrong.  Used by students
-- (docs/course/) and by ctest (every solution must pass; every unmodified
-- starting file must be reported as unfinished, neither crashing nor
-- hanging the checker).
--
--   luamp tutorials/exercises/check.lua 3              checks exercises/03_*.lua
--   luamp tutorials/exercises/check.lua 3 my_try.lua   checks your own file
--   luamp tutorials/exercises/check.lua my/03_x.lua    exercise from the file name
--   luamp tutorials/exercises/check.lua list           lists the exercises
--   luamp tutorials/exercises/check.lua --expect-unfinished 3 FILE
--                                                      (for the tests)
--
-- Exit status: 0 done, 1 something is still wrong, 2 bad usage.  With
-- --expect-unfinished: 0 when the file was found unfinished, 1 when it
-- passed.  Each run of the student's program is killed (with its whole
-- process group) after the exercise's deadline.
--
-- An exercise's expected output uses the tutorial harness's format
-- (tests/tools/check_tutorial.lua): {{int}}, {{num}}, {{*}} placeholders
-- and "<<< unordered" ... ">>>" blocks.

local here = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = here .. "/../lib/?.lua;" .. package.path
local expected = require "expected"

-- The exercises.  `expected` is compared with stdout; `hints` maps a piece
-- of an expected line to advice shown when that line is wrong; `source`
-- lists patterns the file must (or, with `absent`, must not) contain;
-- `methods` are the start methods it is run under.
local exercises = {
  [1] = {
    file = "01_hello_children.lua", session = 1,
    title = "start three children and wait for them",
    methods = {"fork"}, timeout = 10,
    expected = [[
<<< unordered
hello from Process-1
hello from Process-2
hello from Process-3
>>>
all joined:	{0, 0, 0}]],
    hints = {
      ["hello from"] = "a Process does nothing until p:start() is called",
      ["all joined"] = "exitcode stays nil until the process is joined: call p:join() first",
    },
  },
  [2] = {
    file = "02_exit_codes.lua", session = 1,
    title = "the four ways a process ends",
    methods = {"fork"}, timeout = 15,
    expected = [[exit codes:	{0, 3, 1, -15}]],
    hints = {
      ["exit codes"] = "os.exit(3) gives 3; error(...) gives 1; p:terminate() of a sleeping " ..
                       "child gives -15 (killed by signal 15)",
    },
  },
  [3] = {
    file = "03_pipe_squares.lua", session = 2,
    title = "a square server on a Pipe",
    methods = {"fork", "spawn"}, timeout = 10,
    expected = [[
squares:	{1, 4, 9, 16, 25}
worker exit code:	0]],
    hints = {
      ["squares"] = "the worker loops on conn:recv() until nil and answers with conn:send(x * x); " ..
                    "the parent sends x, then receives the answer (x ^ 2 would give floats: 4.0)",
    },
    timeout_hint = "somebody waits in recv() for a message that is never sent: does the worker " ..
                   "answer every number, and does it stop at nil?",
  },
  [4] = {
    file = "04_fan_in_wait.lua", session = 2,
    title = "fan-in with mp.connection.wait",
    methods = {"fork", "spawn"}, timeout = 10,
    expected = [[
answers:	{100, 200, 300, 400}
total:	1000]],
    source = {
      {pattern = "connection%.wait", hint = "use mp.connection.wait(pending, timeout) to find the ready readers"},
    },
    hints = {
      ["answers"] = "loop while answers are missing: wait, then recv() from each ready " ..
                    "connection and store answers[msg[1]] = msg[2]",
    },
    timeout_hint = "recv() on a connection that has already answered waits forever: remove " ..
                   "a reader from the pending list once it has answered",
  },
  [5] = {
    file = "05_counter_race.lua", session = 3,
    title = "a shared counter that loses updates",
    methods = {"fork", "spawn"}, timeout = 30,
    expected = [[counter:	8000]],
    source = {
      {any = {"get_lock%(", ":guard%(", ":acquire%("}, hint = "hold the Value's lock around the " ..
                                                            "update: local _ <close> = counter:get_lock():guard()"},
    },
    hints = {
      ["counter"] = "the lock must cover the read and the write together, in every process " ..
                    "(a lock taken only around the write still loses updates)",
    },
  },
  [6] = {
    file = "06_shared_block.lua", session = 3,
    title = "a named block, cleaned up",
    methods = {"fork", "spawn"}, timeout = 20,
    expected = [[
values:	42	-7
unlinked:	true]],
    hints = {
      ["values"] = "in the child: local block = SharedMemory{name = name}; " ..
                   "block.buf:write(1, string.pack(\"<i8i8\", 42, -7)); block:close()",
      ["unlinked"] = "the creator calls block:close() and then block:unlink(), once",
    },
  },
  [7] = {
    file = "07_parallel_primes.lua", session = 4,
    title = "split work over processes by hand",
    methods = {"fork", "spawn"}, timeout = 30,
    expected = [[
primes up to 300000:	25997
processes used:	4
time:	{{num}}]],
    source = {
      {pattern = "mp%.Process", hint = "start the children with mp.Process{target = ..., args = ...}"},
    },
    hints = {
      ["primes up to"] = "the chunks must cover 1..N exactly once: check the first and last " ..
                         "bounds, and add every child's count",
      ["processes used"] = "count each child you start (and really give it a chunk)",
    },
  },
  [8] = {
    file = "08_pool_primes.lua", session = 4,
    title = "the same count with a Pool",
    methods = {"fork", "spawn"}, timeout = 30,
    expected = [[
primes up to 300000:	25997
tasks:	30
time:	{{num}}]],
    source = {
      {any = {"Pool%(", "Pool%{"}, hint = "make the pool with local pool <close> = mp.Pool(4)"},
      {any = {":map%("}, hint = "count the ranges with pool:map(count_range, ranges)"},
    },
    hints = {
      ["primes up to"] = "the ranges must cover 1..N exactly once: {1, 10000}, {10001, 20000}, ...",
      ["tasks"] = "make TASKS ranges; map returns one result per range, in order",
    },
  },
  [9] = {
    file = "09_echo_server.lua", session = 5,
    title = "an upper-casing server with an authkey",
    methods = {"fork", "spawn"}, timeout = 15,
    expected = [[
HELLO
FROM
LUAMP
wrong key:	true
server exit code:	0]],
    hints = {
      ["HELLO"] = "the client connects with Client(address, {authkey = \"course\"}), sends " ..
                  "each word and prints conn:recv(); the server accepts and answers string.upper(s)",
      ["wrong key"] = "pcall(Client, address, {authkey = \"wrong\"}) fails; test the error with " ..
                      "mp.isinstance(err, mp.AuthenticationError)",
      ["server exit code"] = "the server's accept of the wrong-key client raises too: catch it " ..
                             "with pcall so the server ends normally",
    },
    timeout_hint = "one side waits for the other: does the client send nil at the end, and " ..
                   "does the server stop at nil?",
  },
  [10] = {
    file = "10_manager_counter.lua", session = 5,
    title = "a counter that counts right without a lock",
    methods = {"fork", "spawn"}, timeout = 60,
    expected = [[count:	500]],
    source = {
      {any = {"register%("}, hint = "register the type: CounterManager.register(\"Counter\", new_counter)"},
    },
    hints = {
      ["count"] = "increment() must add 1 to self.n inside the server (one call), and value() " ..
                  "return it; no lock is needed",
      ["no Counter"] = "register new_counter under the name \"Counter\" before making the manager",
    },
  },
  [11] = {
    file = "11_spawn_globals.lua", session = 6,
    title = "make a program work under spawn",
    methods = {"fork", "spawn", "forkserver"}, timeout = 10,
    expected = [[
cube of 3:	27
child exit code:	0]],
    hints = {
      ["cube of 3"] = "under spawn the child never runs your script, so a global function " ..
                      "defined there is missing: make the helper local (it then travels as an upvalue)",
    },
  },
  [12] = {
    file = "12_join_deadlock.lua", session = 6,
    title = "the join that never returns",
    methods = {"fork"}, timeout = 5,
    expected = [[
received:	4194304	bytes
child exit code:	0]],
    timeout_hint = "the child cannot exit while its 4 MiB message is unread, and the parent " ..
                   "waits in join(): read with recv_bytes() first, then join",
  },
}

-- ---------------------------------------------------------------------------
-- Helpers

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end


-- The luamp that runs this checker runs the student's file too.
local function luamp_executable()
  local ok, spawn = pcall(require, "multiprocessing.spawn")
  if ok and spawn.get_executable then return spawn.get_executable() end
  local i = -1
  while arg[i - 1] do i = i - 1 end
  return arg[i]
end

-- Expected text -> a list of items (tutorials/lib/expected.lua: the same
-- format as the tutorials' .expected files).
local function parse_expected(text)
  return (expected.parse(text, "the exercise's expected output"))
end

local function hint_for(ex, text)
  for key, hint in pairs(ex.hints or {}) do
    if text:find(key, 1, true) then return hint end
  end
end

-- Compares the actual lines with the expected items; returns a list of
-- problems (empty when all is well).
local function compare(ex, items, actual)
  local problems = {}
  local pos = 1
  for _, item in ipairs(items) do
    if item.unordered then
      local n = #item.lines
      local chunk = {table.unpack(actual, pos, pos + n - 1)}
      local ok, missing = expected.match_unordered(item.lines, chunk)
      if not ok then
        problems[#problems + 1] = {msg = string.format("missing line (in any order around line %d): %s",
                                                       pos, missing), hint = hint_for(ex, missing)}
        return problems
      end
      pos = pos + n
    else
      local line = actual[pos]
      if line == nil then
        problems[#problems + 1] = {msg = string.format("output ended at line %d; expected: %s", pos, item.text),
                                   hint = hint_for(ex, item.text)}
        return problems
      elseif not line:find(item.pattern) then
        problems[#problems + 1] = {msg = string.format("line %d is\n      %s\n    expected\n      %s", pos, line,
                                                       item.text), hint = hint_for(ex, item.text)}
        return problems
      end
      pos = pos + 1
    end
  end
  if actual[pos] ~= nil then
    problems[#problems + 1] = {msg = string.format("unexpected extra output from line %d: %s", pos, actual[pos])}
  end
  return problems
end

local MAX_OUTPUT = 1000000  -- bytes of stdout kept from one run

-- Runs `path` under `method` with a deadline; returns stdout, stderr,
-- status (exit code, "timeout", "too much output" or "signal N").
local function run(exe, path, method, timeout)
  local errfile = os.tmpname()
  local cmd = string.format("LUAMP_START_METHOD=%s timeout -k 2 %d %s %s 2>%s", shell_quote(method), timeout,
                            shell_quote(exe), shell_quote(path), shell_quote(errfile))
  local p = assert(io.popen(cmd, "r"))
  -- Read at most MAX_OUTPUT bytes: a program that prints forever is cut
  -- off (closing the pipe stops it) instead of filling the memory.
  local chunks, size = {}, 0
  while size <= MAX_OUTPUT do
    local chunk = p:read(65536)
    if not chunk then break end
    chunks[#chunks + 1] = chunk
    size = size + #chunk
  end
  local out = table.concat(chunks)
  local _, how, code = p:close()
  local err = read_file(errfile) or ""
  os.remove(errfile)
  local status = code
  if size > MAX_OUTPUT then
    status = "too much output"
  elseif how == "signal" then
    status = "signal " .. code
  elseif code == 124 or code == 137 then
    status = "timeout"
  end
  return out, err, status
end

local function indent(text, max_lines)
  local lines = expected.lines(text)
  local shown = {}
  for i = 1, math.min(#lines, max_lines) do shown[i] = "      " .. lines[i] end
  if #lines > max_lines then shown[#shown + 1] = "      ..." end
  return table.concat(shown, "\n")
end

-- ---------------------------------------------------------------------------
-- Main

local function usage(msg)
  if msg then io.stderr:write("check.lua: ", msg, "\n") end
  io.stderr:write("usage: luamp tutorials/exercises/check.lua N [file.lua] | file.lua | list\n")
  os.exit(2)
end

local args = {table.unpack(arg)}
local expect_unfinished = false
if args[1] == "--expect-unfinished" then
  expect_unfinished = true
  table.remove(args, 1)
end
if #args == 0 then usage() end

if args[1] == "list" then
  local numbers = {}
  for n in pairs(exercises) do numbers[#numbers + 1] = n end
  table.sort(numbers)
  for _, n in ipairs(numbers) do
    local ex = exercises[n]
    print(string.format("%2d  session %d  %-26s %s", n, ex.session, ex.file, ex.title))
  end
  os.exit(0)
end

local n, path = tonumber(args[1]), args[2]
if not n then
  path = args[1]
  n = tonumber(path:match("([0-9]+)_[^/]*$") or "")
  if not n then usage("cannot tell the exercise from the file name " .. path .. "; give its number first") end
end
local ex = exercises[math.tointeger(n) or 0]
if not ex then usage("there is no exercise " .. tostring(n) .. " (try: check.lua list)") end
path = path or (here .. "/" .. ex.file)
local source = read_file(path)
if not source then usage("cannot read " .. path) end

print(string.format("Exercise %d: %s (%s)", n, ex.title, path))

local count = 0
local function report(list)
  for _, p in ipairs(list) do
    count = count + 1
    print("  - " .. p.msg)
    if p.hint then print("    hint: " .. p.hint) end
    if p.stderr then print("    what it wrote to stderr:\n" .. indent(p.stderr, 12)) end
  end
end

local missing = {}
-- Source rules look at the code without its comments (the starting files'
-- comments name what the solution uses).
local code = source:gsub("%-%-%[(=*)%[.-%]%1%]", ""):gsub("%-%-[^\n]*", "")
for _, rule in ipairs(ex.source or {}) do
  local ok = false
  for _, pattern in ipairs(rule.any or {rule.pattern}) do
    if code:find(pattern) then ok = true end
  end
  if not ok then
    missing[#missing + 1] = {msg = "the program does not use what the exercise asks for", hint = rule.hint}
  end
end
report(missing)

local exe = luamp_executable()
local items = parse_expected(ex.expected)
for _, method in ipairs(ex.methods) do
  if count > 0 then break end
  local out, err, status = run(exe, path, method, ex.timeout)
  local found
  if status == "timeout" then
    found = {{msg = string.format("the program did not finish within %d seconds (it was stopped)", ex.timeout),
              hint = ex.timeout_hint or "something waits forever: a recv, a join or a get that nobody answers"}}
  elseif status == "too much output" then
    found = {{msg = string.format("the program printed more than %d bytes (it was stopped)", MAX_OUTPUT),
              hint = "a loop that never ends?"}}
  else
    found = compare(ex, items, expected.lines(out))
    if status ~= 0 then
      table.insert(found, 1, {msg = "the program ended with exit status " .. tostring(status) ..
                                    " (0 expected)"})
    end
  end
  if #found > 0 then
    print(string.format("  under the %s start method:", method))
    if err ~= "" then found[#found].stderr = err end
    report(found)
  else
    print(string.format("  under the %s start method: ok", method))
  end
end

if count == 0 then
  print(string.format("DONE: exercise %d is solved.", n))
  os.exit(expect_unfinished and 1 or 0)
end
local todos = select(2, source:gsub("TODO", ""))
if todos > 0 then print(string.format("  (the file still has %d TODO%s)", todos, todos == 1 and "" or "s")) end
print(string.format("NOT YET: exercise %d still has %d problem%s.", n, count, count == 1 and "" or "s"))
os.exit(expect_unfinished and 0 or 1)
