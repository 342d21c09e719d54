-- Benchmark "codec": encode + decode a list of 1,000 records of 5 fields
-- (two strings, an integer, a float, a boolean), 1,000 times, with
-- mp.dumps / mp.loads.  Twin of codec.py (pickle protocol 5).
-- Prints: RESULT codec <seconds per round trip of the list> s
local mp = require "multiprocessing"

local records = {}
for i = 1, 1000 do
  records[i] = {id = i, name = "user" .. i, score = i * 1.5, active = i % 2 == 0,
                email = "user" .. i .. "@example.com"}
end

local dumps, loads = mp.dumps, mp.loads
local n = tonumber(os.getenv("BENCH_ITERATIONS")) or 1000
-- Warm up, and check the round trip once.
local back = loads(dumps(records))
assert(#back == 1000 and back[1000].email == "user1000@example.com" and back[7].score == 10.5)

local t0 = os.monotonic()
for _ = 1, n do
  loads(dumps(records))
end
local dt = os.monotonic() - t0
print(string.format("RESULT codec %.9f s", dt / n))
print(string.format("INFO codec message %d bytes", #dumps(records)))
