-- Mixed traffic for bench/gateway/soak.sh, per wrk thread, in a fixed cycle of 10:
-- 7 reads (viewer GET /api/version: 200), 2 writes (submitter POST /api/jobs/: the
-- gateway stamps and forwards, the stand-in upstream answers 200) and 1 denial (viewer
-- POST /api/jobs/: 403 from the gateway). Any other status, and any socket error, is an
-- error. wrk's delay() paces each connection (ms between its requests) to hold the rate.
-- Args: delay_ms, viewer Authorization, submitter Authorization.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  delay_ms = tonumber(args[1])
  viewer = args[2]
  submitter = args[3]
  n = 0
  ok200 = 0
  denied = 0
  other = 0
  body = '{"entrypoint":"python -c pass"}'
end

function delay()
  return delay_ms
end

function request()
  n = n + 1
  local k = n % 10
  local h = { ["Content-Type"] = "application/json" }
  if k < 7 then
    h["Authorization"] = viewer
    return wrk.format("GET", "/api/version", h)
  elseif k < 9 then
    h["Authorization"] = submitter
    return wrk.format("POST", "/api/jobs/", h, body)
  else
    h["Authorization"] = viewer
    return wrk.format("POST", "/api/jobs/", h, body)
  end
end

function response(status, headers, body)
  if status == 200 then
    ok200 = ok200 + 1
  elseif status == 403 then
    denied = denied + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local sent, ok, de, ot = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    sent = sent + t:get("n")
    ok = ok + t:get("ok200")
    de = de + t:get("denied")
    ot = ot + t:get("other")
  end
  local e = summary.errors
  io.write(string.format("soak: sent %d, 200 %d, 403 %d, other %d, socket errors %d\n",
    sent, ok, de, ot, e.connect + e.read + e.write + e.timeout))
end
