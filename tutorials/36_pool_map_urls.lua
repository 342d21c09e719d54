-- 36_pool_map_urls: SEED-001-08, "Worker Pool with map".  A stand-in for
-- real work (fetching a URL) runs over four host names in a pool of 4; the
-- results, in input order, are printed after the block has closed the pool.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function fetch(url)
  return "fetched: " .. url
end

local urls = {"a.com", "b.com", "c.com", "d.com"}
local results
do
  local pool <close> = mp.Pool(4)
  results = pool:map(fetch, urls)
end
for _, r in ipairs(results) do
  print(r)
end
