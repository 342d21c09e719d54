-- 18_repl_target: DOC-12a, from Python's multiprocessing docs (newer
-- versions), the note under "Reference › Process and exceptions".  In
-- Python, a target defined at the interactive prompt dies in a spawn or
-- forkserver child: the child looks the function up by name in its own
-- __main__ module, which has no such name (AttributeError, exit code 1).
--
-- luamp sends a function as bytecode with its upvalues, so a function typed
-- at the prompt works in the child under every start method.  This
-- tutorial types the session of the docs into an interactive luamp (-i)
-- and prints what that session printed: the child's "Ni!" and the process,
-- stopped with exit code 0.  (The prompts and echoed input are left out:
-- they belong to the REPL, not to this lesson.)
-- start methods: fork spawn forkserver
local luamp = arg[-1]  -- the running luamp; the session inherits LUAMP_START_METHOD

local session = table.concat({
  'mp = require "multiprocessing"',
  'function knigit() print("Ni!") end',
  'p = mp.Process{target = knigit}',
  'p:start(); p:join(10)',
  'print("exit code: " .. tostring(p.exitcode))',
  'print(p)',
}, "\n") .. "\n"

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local cmd = string.format("printf '%%s' %s | %s -i 2>&1", shell_quote(session), shell_quote(luamp))
local pipe = assert(io.popen(cmd, "r"))
for line in pipe:lines() do
  -- Keep the session's own output; drop the banner, prompts and echoes
  -- (with input that is not a terminal, prompts may share a line with output).
  line = line:gsub("^[>%s]+", "")
  local out = line:match("^Ni!$") or line:match("^exit code: .*$") or line:match("^<Process .*>$")
  if out then print(out) end
end
pipe:close()
