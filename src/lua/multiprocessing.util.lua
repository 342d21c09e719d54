-- Logging for multiprocessing (API.md, settled details "Logging"): a logger
-- shaped like Python's `logging.Logger` named "multiprocessing", records
-- formatted as "[LEVEL/ProcessName] message", and the helpers the rest of
-- the module calls to log lifecycle messages (util.info, util.debug, ...).
local util = {}

util.SUBDEBUG, util.DEBUG, util.INFO, util.SUBWARNING = 5, 10, 20, 25
util.WARNING, util.ERROR, util.CRITICAL = 30, 40, 50
util.NOTSET = 0

local level_names = {
  [5] = "SUBDEBUG", [10] = "DEBUG", [20] = "INFO", [25] = "SUBWARNING",
  [30] = "WARNING", [40] = "ERROR", [50] = "CRITICAL",
}

local logger  -- created by get_logger()
local current_name = function() return "MainProcess" end

-- process.lua tells util how to name the current process.
function util._set_name_source(fn) current_name = fn end

local Logger = {}
Logger.__index = Logger
Logger.__name = "Logger"

function Logger:setLevel(level)
  if type(level) == "string" then
    for n, name in pairs(level_names) do
      if name == level:upper() then level = n end
    end
  end
  if math.type(level) ~= "integer" then
    error("bad argument #1 to 'setLevel' (level expected, got " .. tostring(level) .. ")", 2)
  end
  self.level = level
end

-- The level in force: this logger's own, or WARNING (the root's) if unset.
function Logger:getEffectiveLevel()
  if self.level and self.level ~= 0 then return self.level end
  return util.WARNING
end

function Logger:isEnabledFor(level) return level >= self:getEffectiveLevel() end

-- Handlers are functions(record_text, level); log_to_stderr adds one.
function Logger:addHandler(h) self.handlers[#self.handlers + 1] = h end

function Logger:log(level, msg, ...)
  if not self:isEnabledFor(level) then return end
  if select("#", ...) > 0 then msg = string.format(msg, ...) end
  msg = tostring(msg)
  if #self.handlers == 0 then
    -- Python's "last resort" handler: the bare message, WARNING and above.
    if level >= util.WARNING then
      io.stderr:write(msg, "\n")
      io.stderr:flush()
    end
    return
  end
  for _, h in ipairs(self.handlers) do h(msg, level) end
end

for name, level in pairs {subdebug = 5, debug = 10, info = 20, subwarning = 25,
                           warning = 30, error = 40, critical = 50} do
  Logger[name] = function(self, msg, ...) return self:log(level, msg, ...) end
end

-- mp.get_logger(): the "multiprocessing" logger (created on first use).
function util.get_logger()
  if not logger then
    logger = setmetatable({name = "multiprocessing", level = 0, handlers = {}}, Logger)
  end
  return logger
end

-- mp.log_to_stderr([level]): adds a handler printing
-- "[LEVEL/ProcessName] message" to stderr; sets the level if given.
function util.log_to_stderr(level)
  local lg = util.get_logger()
  if not lg._stderr_handler then
    lg._stderr_handler = function(msg, lvl)
      io.stderr:write(string.format("[%s/%s] %s\n", level_names[lvl] or ("Level " .. lvl),
                                    current_name(), msg))
      io.stderr:flush()
    end
    lg:addHandler(lg._stderr_handler)
  end
  if level ~= nil then lg:setLevel(level) end
  return lg
end

-- Internal helpers: log only when a logger exists (as Python's util does).
for name, level in pairs {sub_debug = 5, debug = 10, info = 20, sub_warning = 25,
                           warn = 30} do
  util[name] = function(msg, ...)
    if logger then logger:log(level, msg, ...) end
  end
end

-- For children: the logger state to carry over (nil if there is no logger).
function util._config()
  if not logger then return nil end
  return {level = logger.level, stderr = logger._stderr_handler ~= nil}
end

function util._apply_config(cfg)
  if not cfg then return end
  if cfg.stderr then util.log_to_stderr() end
  util.get_logger():setLevel(cfg.level)
end

return util
