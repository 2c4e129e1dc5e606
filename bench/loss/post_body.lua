-- wrk script for bench/loss/run.sh: every request is POST with the bytes of
-- the file named by BENCH_BODY as its body, Content-Type application/json.
-- wrk adds Content-Length itself.
local path = os.getenv("BENCH_BODY")
if path == nil or path == "" then
  error("BENCH_BODY must name the request body file")
end
local file = assert(io.open(path, "rb"))
local body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = body
