-- 22_atomic_increment: DOC-17 (Reference > Shared ctypes Objects > Value)
-- and its runnable form SEED-001-05 ("multiprocessing.Value").
-- `counter.value = counter.value + 1` is a read and then a write: two
-- processes can read the same old value and one increment is lost.  Holding
-- the Value's own lock (`get_lock()`, an RLock by default) around the
-- update makes it atomic: four processes adding 1000 times each always
-- give 4000.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function add_many(counter, n)
  for _ = 1, n do
    local _ <close> = counter:get_lock():guard()
    counter.value = counter.value + 1
  end
end

local counter = mp.Value("i", 0)
local ps = {}
for i = 1, 4 do
  ps[i] = mp.Process{target = add_many, args = {counter, 1000}}
  ps[i]:start()
end
for _, p in ipairs(ps) do p:join() end
print(counter.value)
print(counter:get_lock())
