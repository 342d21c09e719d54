-- The luamp command against the standard lua command: every option of
-- docs/cli.md (script and arg with negative indices, -e, -l mod, -l g=mod,
-- -i with stdin not a terminal, -v, -E, -W, --, -, LUA_INIT, LUA_INIT_5_4 and
-- its @file form, LUA_PATH, LUA_CPATH), error reports and exit statuses,
-- os.exit, and `luamp < file`.  Each case runs luamp with a clean
-- environment and checks the exit status, stdout and stderr; when lua5.4 is
-- installed the same case also runs under it and must give the same status
-- and stdout (stderr differs only in "luamp:" for "lua5.4:"); then every
-- sequence of one or two option-like arguments is compared with lua5.4.
local exe = assert(os.getenv("LUAMP_EXE"), "LUAMP_EXE is not set")

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- A scratch directory, removed at the end.
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir " .. q(dir)))

local function write(name, text)
  local f = assert(io.open(dir .. "/" .. name, "w"))
  f:write(text)
  f:close()
  return dir .. "/" .. name
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- run(interp, case) -> status, stdout, stderr.  The command runs in `dir`
-- with only PATH and the case's variables in its environment; stdin is the
-- case's text (or empty).
local function run(interp, case)
  local env = {"env -i PATH=" .. q(os.getenv("PATH") or "/usr/bin:/bin")}
  for k, v in pairs(case.env or {}) do env[#env + 1] = k .. "=" .. q(v) end
  local args = {}
  for i, a in ipairs(case.args or {}) do args[i] = q(a) end
  local input = write("stdin.txt", case.stdin or "")
  local cmd = string.format("cd %s && %s %s %s < %s > %s 2> %s", q(dir), table.concat(env, " "),
    q(interp), table.concat(args, " "), q(input), q(dir .. "/out.txt"), q(dir .. "/err.txt"))
  local _, how, code = os.execute(cmd)
  assert(how == "exit", "killed by signal: " .. cmd)
  return code, read(dir .. "/out.txt"), read(dir .. "/err.txt")
end

local function has_lua54()
  local ok, how, code = os.execute("command -v lua5.4 >/dev/null 2>&1")
  return ok and how == "exit" and code == 0
end
local reference = has_lua54() and "lua5.4" or nil

-- Files the cases use.
local show_args = write("show_args.lua", [[
local t = {}
for i = -3, #arg do t[#t + 1] = i .. "=" .. tostring(arg[i]) end
print(table.concat(t, " "))
print("...", select("#", ...), ...)
]])
write("m.lua", 'return {name = "m"}\n')
write("init.lua", 'print("init from file")\n')
write("boom.lua", 'local function f() error("boom") end\nf()\n')
write("syntax.lua", 'x = = 1\n')
write("hello.lua", 'print("hello")\nprint(arg[0] ~= nil)\n')
write("exit5.lua", 'io.write("before ")\nos.exit(5)\nprint("not reached")\n')
os.execute("mkdir " .. q(dir .. "/cmod"))

local failures = 0
local function check(case)
  local code, out, err = run(exe, case)
  -- The interpreter's own path shows in arg; compare without it.
  out = out:gsub(exe:gsub("%p", "%%%0"), "<exe>")
  local function fail(what)
    failures = failures + 1
    io.stderr:write(string.format("FAIL %s: %s\n  status %s\n  stdout %q\n  stderr %q\n",
      case.name, what, code, out, err))
  end
  if case.status and code ~= case.status then fail("status, expected " .. case.status) end
  if case.stdout and out ~= case.stdout then fail("stdout, expected " .. string.format("%q", case.stdout)) end
  for _, s in ipairs(case.out_has or {}) do
    if not out:find(s, 1, true) then fail("stdout lacks " .. s) end
  end
  for _, s in ipairs(case.out_lacks or {}) do
    if out:find(s, 1, true) then fail("stdout has " .. s) end
  end
  for _, s in ipairs(case.err_has or {}) do
    if not err:find(s, 1, true) then fail("stderr lacks " .. s) end
  end
  if case.err_empty and err ~= "" then fail("stderr not empty") end
  if reference and case.same ~= false then
    local rcode, rout, rerr = run(reference, case)
    rout = rout:gsub("lua5%.4", "<exe>")
    if rcode ~= code then fail("status differs from lua5.4's " .. rcode) end
    if case.same_stdout ~= false and rout ~= out then fail(string.format("stdout differs from lua5.4's %q", rout)) end
    local rerr_as_luamp = rerr:gsub("^lua5%.4: ", "luamp: "):gsub("\nlua5%.4: ", "\nluamp: ")
    if case.same_stderr_head then
      local n = #case.same_stderr_head
      if err:sub(1, n) ~= rerr_as_luamp:sub(1, n) or err:sub(1, n) ~= case.same_stderr_head then
        fail(string.format("stderr head differs: lua5.4 gave %q", rerr))
      end
    end
  end
end

local cases = {
  {name = "script with arguments", args = {"show_args.lua", "a", "b"}, status = 0,
   stdout = "-3=nil -2=nil -1=<exe> 0=show_args.lua 1=a 2=b\n...\t2\ta\tb\n"},
  {name = "negative arg indices for options", args = {"-e", "x=1", "-W", "show_args.lua", "a"}, status = 0,
   stdout = "-3=-e -2=x=1 -1=-W 0=show_args.lua 1=a\n...\t1\ta\n"},
  {name = "-e runs a statement", args = {"-e", "print(1 + 1)"}, status = 0, stdout = "2\n"},
  {name = "-e glued to its argument", args = {"-eprint(3)"}, status = 0, stdout = "3\n"},
  {name = "several -e in order", args = {"-e", "x = 2", "-e", "print(x * 21)"}, status = 0, stdout = "42\n"},
  {name = "-l mod", args = {"-l", "m", "-e", "print(m.name)"}, env = {LUA_PATH = "./?.lua"},
   status = 0, stdout = "m\n"},
  {name = "-l g=mod", args = {"-l", "g=m", "-e", "print(g.name, m)"}, env = {LUA_PATH = "./?.lua"},
   status = 0, stdout = "m\tnil\n"},
  {name = "-l of a missing module", args = {"-l", "nosuchmod"}, status = 1,
   err_has = {"luamp: module 'nosuchmod' not found", "stack traceback:"}},
  {name = "-l multiprocessing", args = {"-l", "mp=multiprocessing", "-e", "print(mp.cpu_count() >= 1)"},
   status = 0, stdout = "true\n", same = false},
  {name = "-i with stdin not a terminal", args = {"-i"}, stdin = "x = 3\nx * 2\n", status = 0,
   out_has = {"Lua 5.4", "> x = 3", "6\n"}, same_stdout = false},
  {name = "-i after a script", args = {"-i", "hello.lua"}, stdin = "=1 + 1\n", status = 0,
   out_has = {"hello\ntrue\n", "2\n"}, same_stdout = false},
  {name = "-v", args = {"-v"}, status = 0, out_has = {"Lua 5.4", "Copyright"}, same_stdout = false},
  {name = "-v names luamp and its version (the module's)", args = {"-v"}, status = 0,
   out_has = {"luamp " .. require("multiprocessing").version .. " -- Lua 5.4"}, same = false},
  {name = "-v with -e", args = {"-v", "-e", "print('after')"}, status = 0, out_has = {"Lua 5.4", "after\n"},
   same_stdout = false},
  {name = "-E ignores LUA_INIT and LUA_PATH", args = {"-E", "-e", "print(package.path:find('nowhere', 1, true))"},
   env = {LUA_INIT = "print('init')", LUA_PATH = "/nowhere/?.lua"}, status = 0, stdout = "nil\n"},
  {name = "without -E, LUA_INIT and LUA_PATH count",
   args = {"-e", "print(package.path)"},
   env = {LUA_INIT = "print('init')", LUA_PATH = "/nowhere/?.lua"}, status = 0,
   stdout = "init\n/nowhere/?.lua\n"},
  {name = "LUA_PATH with ;; adds the default path", args = {"-e", "print(package.path:sub(1, 15), #package.path > 20)"},
   env = {LUA_PATH = "/nowhere/?.lua;;"}, status = 0, stdout = "/nowhere/?.lua;\ttrue\n"},
  {name = "LUA_CPATH", args = {"-e", "print(package.cpath)"}, env = {LUA_CPATH = "./cmod/?.so"},
   status = 0, stdout = "./cmod/?.so\n"},
  {name = "-W turns warnings on", args = {"-W", "-e", "warn('hi')"}, status = 0, err_has = {"Lua warning: hi"}},
  {name = "warnings are off by default", args = {"-e", "warn('hi')"}, status = 0, err_empty = true},
  {name = "-- stops options", args = {"--", "show_args.lua", "-e"}, status = 0,
   stdout = "-3=nil -2=<exe> -1=-- 0=show_args.lua 1=-e\n...\t1\t-e\n"},
  {name = "-- with nothing after it runs stdin", args = {"--"}, stdin = "print(arg[1], #arg)\n",
   status = 0, stdout = "--\t1\n"},
  {name = "-e then a missing script", args = {"-e", "print(arg[0] ~= nil, arg[-1], arg[1], arg[2], #arg)", "x"},
   status = 1, err_has = {"cannot open x"}},
  {name = "arg with -e only", args = {"-e", "print(arg[-1], arg[1], arg[2], #arg)"},
   status = 0, stdout = "nil\t-e\tprint(arg[-1], arg[1], arg[2], #arg)\t2\n"},
  {name = "- runs stdin with arguments", args = {"-", "a", "b"}, stdin = "print('stdin', arg[0], ...)\n",
   status = 0, stdout = "stdin\t-\ta\tb\n"},
  {name = "stdin as a script, no prompts", args = {}, stdin = "print('piped')\nprint(1 + 1)\n", status = 0,
   stdout = "piped\n2\n"},
  {name = "luamp < file", args = {}, stdin = read(dir .. "/hello.lua"), status = 0, stdout = "hello\ntrue\n"},
  {name = "LUA_INIT runs first", args = {"-e", "print('e')"}, env = {LUA_INIT = "print('init')"},
   status = 0, stdout = "init\ne\n"},
  {name = "LUA_INIT_5_4 wins over LUA_INIT", args = {"-e", "print('e')"},
   env = {LUA_INIT = "print('plain')", LUA_INIT_5_4 = "print('5.4')"}, status = 0, stdout = "5.4\ne\n"},
  {name = "LUA_INIT=@file", args = {"-e", "print('e')"}, env = {LUA_INIT = "@init.lua"},
   status = 0, stdout = "init from file\ne\n"},
  {name = "LUA_INIT error stops", args = {"-e", "print('e')"}, env = {LUA_INIT = "error('bad init')"},
   status = 1, stdout = "", err_has = {"luamp: LUA_INIT:1: bad init"}},
  {name = "error in -e", args = {"-e", "error('boom')"}, status = 1, stdout = "",
   err_has = {"luamp: (command line):1: boom\nstack traceback:"}},
  {name = "error in a script", args = {"boom.lua", "x"}, status = 1,
   err_has = {"luamp: boom.lua:1: boom", "stack traceback:", "in local 'f'"}},
  {name = "syntax error", args = {"syntax.lua"}, status = 1, err_has = {"luamp: syntax.lua:1:"}},
  {name = "missing script", args = {"nosuch.lua"}, status = 1,
   err_has = {"luamp: cannot open nosuch.lua"}},
  {name = "error object with __tostring", args = {"-e", "error(require('multiprocessing').Empty('none left'))"},
   status = 1, err_has = {"luamp: Empty: none left"}, same = false},
  {name = "error object without __tostring", args = {"-e", "error({})"}, status = 1,
   err_has = {"luamp: (error object is a table value)"}},
  {name = "unknown option", args = {"-x"}, status = 1, stdout = "",
   err_has = {"luamp: unrecognized option '-x'", "usage: luamp [options] [script [args]]"}},
  {name = "-e without its argument", args = {"-e"}, status = 1, err_has = {"luamp: '-e' needs argument"}},
  {name = "-l without its argument", args = {"-l"}, status = 1, err_has = {"luamp: '-l' needs argument"}},
  {name = "-E with extra letters", args = {"-Ex"}, status = 1, err_has = {"unrecognized option '-Ex'"}},
  {name = "os.exit(n)", args = {"exit5.lua"}, status = 5, stdout = "before "},
  {name = "os.exit(true)", args = {"-e", "os.exit(true)"}, status = 0},
  {name = "os.exit(false)", args = {"-e", "os.exit(false)"}, status = 1},
  {name = "os.exit() in stdin script", args = {"-"}, stdin = "os.exit(3)", status = 3},
}

for _, case in ipairs(cases) do check(case) end

-- Against lua5.4: every sequence of one or two of these arguments gives the
-- same exit status and stdout (version lines aside) and the same first line
-- on stderr (program name aside).
local combos = 0
if reference then
  local tokens = {"-e", "print(1)", "-", "--", "show_args.lua", "a", "-v", "-E", "-W", "-i", "-l",
                  "-x", "-e print(2)"}
  local function normalize(s)
    return (s:gsub("luamp %S+ %-%- Lua", "Lua"):gsub(exe:gsub("%p", "%%%0"), "<exe>")
      :gsub("lua5%.4", "<exe>"):gsub("luamp", "<exe>"))
  end
  local function compare(args)
    combos = combos + 1
    local case = {args = args, stdin = "print('in', ...)\n"}
    local c1, o1, e1 = run(exe, case)
    local c2, o2, e2 = run(reference, case)
    o1, o2 = normalize(o1), normalize(o2)
    e1, e2 = normalize(e1):match("^[^\n]*"), normalize(e2):match("^[^\n]*")
    if c1 ~= c2 or o1 ~= o2 or e1 ~= e2 then
      failures = failures + 1
      io.stderr:write(string.format("FAIL luamp %s differs from lua5.4: status %s/%s, stdout %q/%q, stderr %q/%q\n",
        table.concat(args, " "), c1, c2, o1, o2, e1, e2))
    end
  end
  for _, a in ipairs(tokens) do
    compare {a}
    for _, b in ipairs(tokens) do compare {a, b} end
  end
end

os.execute("rm -rf " .. q(dir))
assert(failures == 0, failures .. " CLI case(s) failed (details above)")
print("ok: " .. #cases .. " cases" .. (reference and (", compared with lua5.4, and " .. combos
  .. " option sequences") or ""))
