# The request-timing loop shared by bench/history/live.sh and serve.sh (sourced): one GET
# at a time with curl, one line per request, and the same percentiles on both scripts.
# p99 of n requests is the value at rank int(0.99 n) of the sorted times (of 50, the
# slowest but one; of 10 or 20, the slowest).

# time_get BODY_OUT URL [CURL_ARGS...]: one GET; prints "status seconds bytes".
time_get() {
  local out=$1 url=$2
  shift 2
  curl -s -o "$out" -w '%{http_code} %{time_total} %{size_download}\n' "$@" "$url"
}

# time_stats FILE: "p50_ms p99_ms bytes_of_the_last non_200_count n" of time_get's lines.
time_stats() {
  python3 - "$1" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
t = sorted(float(r[1]) * 1000 for r in rows)
q = lambda p: t[min(len(t) - 1, int(p * len(t)))]
print(f"{q(0.5):.1f} {q(0.99):.1f} {rows[-1][2]} {sum(r[0] != '200' for r in rows)} {len(t)}")
PY
}
