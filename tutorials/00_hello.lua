-- 00_hello: the first thing to run.  Not from Python's documentation: it
-- checks that luamp works and shows the three things every later tutorial
-- uses: the multiprocessing module, the current process, and repr().
-- start methods: fork
local mp = require "multiprocessing"

print("cpu count:", mp.cpu_count())
print("this process:", mp.current_process().name)
print(repr {1, 4, 9, name = "squares", nested = {x = 1.5, ok = true}})
