-- Tiny class system shared by luamp's Lua-level types: error classes,
-- Process (mp.Process:extend()), managers and proxies (BaseManager:extend()).
--
--   local Point = class.new("Point")        -- a root class
--   local P3 = Point:extend("P3")           -- a subclass (metamethods inherited)
--   local p = P3(...)                        -- calls P3:new(...) (default: table)
--   class.isinstance(p, Point)  --> true
--
-- A class is the metatable of its instances: `__index` is the class itself,
-- `__parent` links to the base class, `__name` shows in error messages.
local class = {}

local function call_class(cls, ...)
  return cls:new(...)
end

-- Default constructor: copies the fields of an optional table into the new
-- instance.
local function default_new(cls, fields)
  local obj = {}
  if type(fields) == "table" then
    for k, v in pairs(fields) do obj[k] = v end
  end
  return setmetatable(obj, cls)
end

local function make(name, parent)
  local cls = {}
  cls.__index = cls
  cls.__name = name
  cls.__parent = parent
  if parent then
    -- Lua reads metamethods with rawget, so copy them down explicitly.
    for k, v in pairs(parent) do
      if type(k) == "string" and k:sub(1, 2) == "__" and k ~= "__index"
          and k ~= "__name" and k ~= "__parent" then
        cls[k] = v
      end
    end
  end
  cls.extend = function(self, subname)
    return make(subname or (self.__name .. "Subclass"), self)
  end
  if not parent then cls.new = default_new end
  return setmetatable(cls, {__index = parent, __call = call_class})
end

-- Makes a root class named `name`.
function class.new(name)
  return make(name, nil)
end

-- True when obj is an instance of cls or of a subclass of it.
function class.isinstance(obj, cls)
  if type(cls) ~= "table" then
    error("bad argument #2 to 'isinstance' (class expected, got " .. type(cls) .. ")", 2)
  end
  local mt = getmetatable(obj)
  while type(mt) == "table" do
    if mt == cls then return true end
    mt = rawget(mt, "__parent")
  end
  return false
end

-- True when sub is cls or derives from it.
function class.issubclass(sub, cls)
  while type(sub) == "table" do
    if sub == cls then return true end
    sub = rawget(sub, "__parent")
  end
  return false
end

return class
