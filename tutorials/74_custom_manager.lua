-- 74_custom_manager: DOC-23, Python's "Managers › Customized managers".
-- A BaseManager subclass registers a type; m:Maths() makes one in the
-- server and returns a proxy whose methods run there.  Python's class
-- becomes a constructor returning a table with methods; by default a proxy
-- exposes the public methods (names not starting with "_").
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local MathsClass = {}
MathsClass.__index = MathsClass
function MathsClass:add(x, y) return x + y end
function MathsClass:mul(x, y) return x * y end
local function new_maths() return setmetatable({}, MathsClass) end

local MyManager = mp.managers.BaseManager:extend("MyManager")
MyManager.register("Maths", new_maths)

do
  local manager <close> = MyManager()
  manager:start()
  local maths = manager:Maths()
  print(maths:add(4, 3))   --> 7
  print(maths:mul(7, 8))   --> 56
  print(repr(maths._exposed_))   --> {"add", "mul"}
end
