-- GET a different URL on each request, cycling through COUNT of them:
-- PREFIX .. the number i * STEP written with WIDTH digits, i = 1..COUNT.
--   wrk ... -s bench/wrk/get_cycle.lua http://127.0.0.1:PORT \
--     -- /api/v1/products/demo- 1000 10 7
-- (demo-0000010, demo-0000020, ... demo-0010000). Each wrk thread starts
-- at its own offset, so threads do not ask for the same ids in step.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local prefix, count, step, width
local paths = {}
local i = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("offset", threads * 997)
end

function init(args)
  prefix = args[1]
  count = tonumber(args[2])
  step = tonumber(args[3] or "1")
  width = tonumber(args[4] or "7")
  for n = 1, count do
    paths[n] = prefix .. string.format("%0" .. width .. "d", n * step)
  end
  i = (offset or 0) % count
end

function request()
  i = i % count + 1
  return wrk.format("GET", paths[i])
end
