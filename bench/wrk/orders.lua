-- POST /api/v1/orders: each request a new order of 1 to 3 distinct products
-- (quantity 1 to 3 each) picked at random, with its own Idempotency-Key.
--   wrk ... -s bench/wrk/orders.lua URL -- TOKEN PRODUCT_IDS KEY_PREFIX
-- PRODUCT_IDS is comma-separated; KEY_PREFIX makes keys unique per run.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

local products = {}
local headers = {}
local prefix = "k"
local counter = 0

function init(args)
  if not args[2] then
    error("orders.lua needs TOKEN and PRODUCT_IDS (after --)")
  end
  for id in string.gmatch(args[2], "[^,]+") do
    products[#products + 1] = id
  end
  prefix = (args[3] or "k") .. "-" .. tostring(thread_number or 0)
  math.randomseed(os.time() * 1000 + (thread_number or 0))
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. args[1]
end

function request()
  counter = counter + 1
  local wanted = math.random(1, 3)
  local chosen, lines = {}, {}
  while #lines < wanted do
    local id = products[math.random(#products)]
    if not chosen[id] then
      chosen[id] = true
      lines[#lines + 1] = string.format(
        '{"product_id":"%s","quantity":%d}', id, math.random(1, 3))
    end
  end
  headers["Idempotency-Key"] = prefix .. "-" .. counter
  return wrk.format("POST", nil, headers, '{"items":[' .. table.concat(lines, ",") .. ']}')
end
