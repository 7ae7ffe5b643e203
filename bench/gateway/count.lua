-- wrk script for bench/gateway/cost.sh: exits after REQUESTS answers (one wrk thread), so
-- that instruction, syscall and allocation counts divide by a known request count. wrk's
-- main thread would sleep out its -d duration whatever the threads do, hence os.exit.
-- Answers other than 200 are reported: the cost of a refusal is not the cost of a
-- forwarded request, so cost.sh refuses a run that had any.
local limit = tonumber(os.getenv("REQUESTS") or "20000")
local n, bad = 0, 0

response = function(status, headers, body)
  n = n + 1
  if status ~= 200 then
    bad = bad + 1
  end
  if n >= limit then
    io.write(string.format("answers %d status_errors %d\n", n, bad))
    io.flush()
    os.exit(0)
  end
end
