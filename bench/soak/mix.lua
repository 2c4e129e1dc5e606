-- wrk script for bench/soak/run.sh: every connection cycles through
-- GET /healthz, GET /v1/losses and POST /v1/loss (a 2x3 cross-entropy), and
-- every response's status is counted per class (2xx, 4xx, ...) so that the
-- summary can show which statuses the non-2xx were.
--
-- SOAK_API_KEY (environment), when set, is sent as a bearer token.

local key = os.getenv("SOAK_API_KEY")
local headers = {}
if key and key ~= "" then
  headers["Authorization"] = "Bearer " .. key
end
local post_headers = {["Content-Type"] = "application/json"}
for k, v in pairs(headers) do post_headers[k] = v end

local body = '{"loss":"cross_entropy","logits":[[2.0,0.5,-1.0],[0.1,0.2,0.3]],"labels":[0,2]}'

-- Formatted in init(): at load time wrk has not set its Host header yet, and
-- lossd answers an HTTP/1.1 request without Host with 400.
local requests

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  requests = {
    wrk.format("GET", "/healthz", headers),
    wrk.format("GET", "/v1/losses", headers),
    wrk.format("POST", "/v1/loss", post_headers, body),
  }
  counter = 0
  statuses = {}
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for status, n in pairs(s) do
      total[status] = (total[status] or 0) + n
    end
  end
  local keys = {}
  for status in pairs(total) do table.insert(keys, status) end
  table.sort(keys)
  local parts = {}
  for _, status in ipairs(keys) do
    table.insert(parts, status .. "=" .. total[status])
  end
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
end
