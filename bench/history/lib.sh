# What bench/history/{live,serve,cache}.sh share (sourced): starting `history serve` on a
# store with one user, and the request-timing loop: one GET at a time with curl, one line
# per request, and the same percentiles in every script.
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

# start_serve BIN DIR PYTHON: `BIN history serve` on DIR/store with the user alice
# (password Secret-Pass1, bcrypt cost 4: PYTHON's bcrypt if it has one, else the gateway's
# passwd subcommand) reading every namespace, its stderr in DIR/serve.err. Sets spid (the
# server's pid, for the caller's cleanup) and addr (host:port it listens on).
start_serve() {
  local bin=$1 d=$2 py=$3 hash
  hash=$("$py" -c "import bcrypt;print(bcrypt.hashpw(b'Secret-Pass1', bcrypt.gensalt(4)).decode())" 2>/dev/null || true)
  if [ -z "$hash" ]; then
    echo 'Secret-Pass1' | "$bin" gateway passwd "$d/htpasswd" alice --cost 4 2>/dev/null
  else
    echo "alice:$hash" >"$d/htpasswd"
  fi
  mkdir -p "$d/ui"; echo '<!doctype html>' >"$d/ui/index.html"
  cat >"$d/history.toml" <<TOML
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
store = "$d/store"
dashboard_dir = "$d/ui"
[auth]
htpasswd = "$d/htpasswd"
[users]
alice = "all"
[roles.all]
namespaces = ["*"]
TOML
  "$bin" history serve --config "$d/history.toml" 2>"$d/serve.err" &
  spid=$!
  for _ in $(seq 100); do grep -q "listening on" "$d/serve.err" 2>/dev/null && break; sleep 0.1; done
  addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$d/serve.err" | head -1)
}
