-- 77_proxy_objects: DOC-28 to DOC-33, Python's "Reference › Proxy Objects".
-- A proxy stands for an object living in the manager's server.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

do
  local manager <close> = mp.Manager()

  -- DOC-28: a list proxy.  tostring and repr both show the contents (luamp
  -- shows proxies by content; Python's repr() shows "<ListProxy object,
  -- typeid 'list' at 0x...>").  Python's l[4] is l[5]; the slice l[2:5] is
  -- l:totable(3, 5).
  local squares = {}
  for i = 0, 9 do squares[#squares + 1] = i * i end
  local l = manager:list(squares)
  print(l)                       --> {0, 1, 4, 9, 16, 25, 36, 49, 64, 81}
  print(l[5])                    --> 16
  print(repr(l:totable(3, 5)))   --> {4, 9, 16}

  -- DOC-29: proxies nest.  b's referent is stored in a's, and a change made
  -- through b shows through a.
  local a = manager:list()
  local b = manager:list()
  a:append(b)
  print(a, b)                    --> {{}}  {}
  b:append("hello")
  print(a[1], b)                 --> {"hello"}  {"hello"}

  -- DOC-30: dict proxies inside a list proxy.
  local l_outer = manager:list({manager:dict(), manager:dict()})
  local d_first_inner = l_outer[1]
  d_first_inner.a = 1
  d_first_inner.b = 2
  l_outer[2].c = 3
  l_outer[2].z = 26
  print(l_outer[1])              --> {a = 1, b = 2}
  print(l_outer[2])              --> {c = 3, z = 26}

  -- DOC-31: a plain table inside a proxy is a value: reading it gives a
  -- copy, and a change to the copy reaches the server only when it is
  -- stored back.
  local lproxy = manager:list()
  lproxy:append({})
  local d = lproxy[1]
  d.a = 1
  d.b = 2
  print(repr(lproxy[1]))         --> {}   (not yet)
  lproxy[1] = d
  print(repr(lproxy[1]))         --> {a = 1, b = 2}

  -- DOC-32: a proxy is not equal to a table with the same contents; compare
  -- a copy instead.
  local l123 = manager:list({1, 2, 3})
  print(l123 == {1, 2, 3})                      --> false
  print(repr(l123:copy()) == repr({1, 2, 3}))   --> true

  -- DOC-33: proxy:_callmethod(name, args) runs a method of the referent in
  -- the server.  The list referent's methods are the proxy's (append,
  -- totable, ...) plus __len__, __getitem__ and __setitem__.  An error
  -- raised by the referent comes back as that error.
  local l10 = manager:list({0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
  print(l10:_callmethod("__len__"))                    --> 10
  print(repr(l10:_callmethod("totable", {3, 7})))      --> {2, 3, 4, 5, 6}
  local ok, err = pcall(l10._callmethod, l10, "__setitem__", {21, 0})
  print(ok, (tostring(err):match("^[^\n]*")))          --> false  __setitem__: list index 21 out of range (length 10)
end
