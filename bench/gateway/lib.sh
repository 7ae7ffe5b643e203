# Shared by bench/gateway/run.sh, soak.sh and cost.sh (sourced, after ROOT, OUT and log()
# are set): which rayward binary is measured, which commit it is, and the nginx config
# every nginx of these benchmarks starts from.

# Sets RAYWARD: RAYWARD_BIN when given, else a release build of this tree.
rayward_bin() {
  if [ -n "${RAYWARD_BIN:-}" ]; then
    RAYWARD=$RAYWARD_BIN
    return
  fi
  log "building rayward (release)"
  (cd "$ROOT" && cargo build --release -q -p rayward)
  local target
  target=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  RAYWARD=$target/release/rayward
}

# Sets COMMIT: this tree's short commit, "+local changes" when the code differs from it.
tree_commit() {
  COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')
  git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null ||
    COMMIT="$COMMIT+local changes"
}

# nginx_conf NAME SERVER_BLOCKS: writes OUT/NAME/nginx.conf, one worker (like the gateway
# pinned to one core), no access log (the gateway logs only state changes and refusals,
# not reads). NGINX_MAIN (e.g. "master_process off;": one pid is the whole server) and
# NGINX_CONNECTIONS (1024) adjust it.
nginx_conf() {
  local d=$OUT/$1
  mkdir -p "$d/logs"
  cat >"$d/nginx.conf" <<NGX
user root root;
worker_processes 1;
${NGINX_MAIN:-}
daemon off;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections ${NGINX_CONNECTIONS:-1024}; }
http {
  access_log off;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  keepalive_requests 1000000;
$2
}
NGX
}
