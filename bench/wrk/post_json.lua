-- Send a JSON body to the URL given to wrk (POST unless a method is given),
-- optionally with "Authorization: Bearer <token>".
--   wrk ... -s bench/wrk/post_json.lua URL -- BODY [TOKEN] [METHOD]
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

function init(args)
  if not args[1] then
    error("post_json.lua needs the JSON body as its first argument (after --)")
  end
  wrk.method = (args[3] and args[3] ~= "") and args[3] or "POST"
  wrk.body = args[1]
  wrk.headers["Content-Type"] = "application/json"
  if args[2] and args[2] ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. args[2]
  end
end
