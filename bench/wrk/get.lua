-- GET the URL given to wrk, optionally with "Authorization: Bearer <token>".
--   wrk ... -s bench/wrk/get.lua http://127.0.0.1:PORT/path [-- TOKEN]
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

function init(args)
  wrk.method = "GET"
  if args[1] and args[1] ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. args[1]
  end
end
