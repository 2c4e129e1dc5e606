#!/usr/bin/env bash
# HTTP-layer benchmark: lossd against a minimal FastAPI app (uvicorn), both
# on loopback, driven by wrk, on GET /healthz and GET /openapi.yaml.
#
#   bench/http/run.sh
#   BENCH_SECONDS=3 bench/http/run.sh
#
# What runs:
#   lossd    scripts/build-release.sh, then .build/release/lossd --port 0 with
#            default settings: handler threads = cores, log level info, so
#            every request writes an access-log line to stderr (kept in
#            $BENCH_OUT/lossd.stderr.log.gz).
#   fastapi  bench/http/fastapi_app.py: uvicorn, 1 worker, uvloop + httptools,
#            --log-level warning and the access log off.
#   wrk      for each route x connections (1, 16, 256): -t1 for 1 connection,
#            -t2 otherwise, --latency, BENCH_SECONDS each, lossd then fastapi.
# wrk shares the machine's cores with the server it drives, so the numbers
# compare the two servers on the same machine; they are not capacity figures.
#
# Environment:
#   BENCH_SECONDS      seconds per wrk run (default 5)
#   BENCH_WARMUP       seconds of warm-up per server and route, not reported (default 1; 0: none)
#   BENCH_CONNECTIONS  connection counts (default "1 16 256")
#   BENCH_ROUTES       routes (default "/healthz /openapi.yaml")
#   BENCH_VENV         Python venv for FastAPI (default .venv-bench, git-ignored)
#   BENCH_BUILD        0: use the existing .build/release/lossd, do not build
#   BENCH_LOSSD        a lossd binary to use instead (nothing is built)
#   LOSSD_GENERIC      1: build lossd for baseline x86-64 (see scripts/build-release.sh)
#   BENCH_OUT          folder for raw wrk output, logs and the table
#                      (default bench/results/http-<UTC time>, git-ignored)
# Prints the table last: route, conns, lossd req/s, lossd p99, fastapi req/s,
# fastapi p99, ratio (lossd req/s / fastapi req/s).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${BENCH_SECONDS:-5}
warmup=${BENCH_WARMUP:-1}
connections=${BENCH_CONNECTIONS:-"1 16 256"}
routes=${BENCH_ROUTES:-"/healthz /openapi.yaml"}
venv=${BENCH_VENV:-.venv-bench}
out=${BENCH_OUT:-bench/results/http-$(date -u +%Y%m%dT%H%M%SZ)}

# Pinned versions, verified together on Python 3.11.
pins=(
  "fastapi==0.165.0"
  "starlette==1.10.0"
  "uvicorn==0.54.0"
  "uvloop==0.23.0"
  "httptools==0.9.0"
)

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

mkdir -p "$out"
tmp=$(mktemp -d)
lossd_pid=
fastapi_pid=

# Stops what this script started (by pid), then removes the scratch folder.
stop_servers() {
  local pid
  for pid in $lossd_pid $fastapi_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $lossd_pid $fastapi_pid; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  lossd_pid=
  fastapi_pid=
  rm -rf -- "$tmp"
}
trap stop_servers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools ------------------------------------------------------------------

scripts/install-deps.sh --test || die "missing system packages (see above)"
command -v wrk >/dev/null || die "wrk not found"

# The project's release build (AVX2 on x86-64 unless LOSSD_GENERIC=1), the
# binary that `make run` starts.
if [ -n "${BENCH_LOSSD:-}" ]; then
  lossd_bin=$BENCH_LOSSD
else
  if [ "${BENCH_BUILD:-1}" != 0 ]; then
    log "building lossd (scripts/build-release.sh)"
    if ! bash scripts/build-release.sh >"$out/build.log" 2>&1; then
      tail -n 30 "$out/build.log" >&2
      die "release build failed (full log: $out/build.log)"
    fi
  fi
  lossd_bin=$(swift build -c release --show-bin-path)/lossd
fi
[ -x "$lossd_bin" ] || die "$lossd_bin not found"

bench_tools_ready() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" - "${pins[@]}" >/dev/null 2>&1 <<'PY'
import sys
from importlib import metadata
for pin in sys.argv[1:]:
    name, version = pin.split("==")
    if metadata.version(name) != version:
        sys.exit(1)
import fastapi, uvicorn, uvloop, httptools  # noqa: E401,F401
PY
}

if ! bench_tools_ready; then
  if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    rm -rf -- "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed; run scripts/install-deps.sh --test"
  fi
  log "installing ${pins[*]} into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}" \
    || die "pip install failed"
  bench_tools_ready || die "$venv still lacks ${pins[*]}"
fi

# --- servers ----------------------------------------------------------------

# wait_for_port PID FILE: the port from the `listening on http://HOST:PORT`
# line the server prints on stdout.
wait_for_port() {
  local pid=$1 file=$2 port
  for _ in $(seq 300); do
    port=$(sed -n 's|.*listening on http://.*:\([0-9][0-9]*\).*|\1|p' "$file" | head -n 1)
    if [ -n "$port" ]; then
      echo "$port"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

"$lossd_bin" --port 0 --data-dir "$tmp/data" >"$tmp/lossd.stdout" 2>"$out/lossd.stderr.log" &
lossd_pid=$!
lossd_port=$(wait_for_port "$lossd_pid" "$tmp/lossd.stdout") \
  || { tail -n 20 "$out/lossd.stderr.log" >&2; die "lossd did not start"; }

"$venv/bin/python" bench/http/fastapi_app.py >"$tmp/fastapi.stdout" 2>"$out/fastapi.stderr.log" &
fastapi_pid=$!
fastapi_port=$(wait_for_port "$fastapi_pid" "$tmp/fastapi.stdout") \
  || { tail -n 20 "$out/fastapi.stderr.log" >&2; die "fastapi did not start"; }

log "lossd on :$lossd_port (pid $lossd_pid), fastapi on :$fastapi_port (pid $fastapi_pid)"

# Both must answer 200 on every route before anything is measured.
for route in $routes; do
  for server in lossd fastapi; do
    port_var=${server}_port
    url="http://127.0.0.1:${!port_var}$route"
    status=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url") || status=000
    [ "$status" = 200 ] || die "$server $route answered $status"
    log "$server $route: 200, $(wc -c <"$tmp/body") bytes"
  done
done

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(nproc) cores, $(uname -sr)"
  echo "lossd: $(curl -s "http://127.0.0.1:$lossd_port/v1/version") ($lossd_bin)"
  echo "fastapi: $("$venv/bin/python" -c 'import sys, fastapi, uvicorn, uvloop; print(f"fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__}, uvloop {uvloop.__version__}, python {sys.version.split()[0]}")')"
  echo "wrk: $(wrk -v 2>&1 | head -n 1)"
  echo "seconds per run: $seconds, warm-up: ${warmup}s"
} >"$out/environment.txt"
sed 's/^/bench: /' "$out/environment.txt" >&2

# --- measurements -----------------------------------------------------------

# wrk prints latencies as 812.00us, 1.23ms, 2.00s or 1.50m: in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    else if (u == "h") n *= 3600000; else if (u != "ms") { print "?"; exit }
    printf "%.3f", n }'
}

notes=()
declare -A rps p99

for route in $routes; do
  name=$(echo "$route" | tr -c 'A-Za-z0-9.\n' '_' | sed 's/^_//')
  if [ "$warmup" != 0 ]; then
    for server in lossd fastapi; do
      port_var=${server}_port
      wrk -t 1 -c 4 -d "${warmup}s" "http://127.0.0.1:${!port_var}$route" >/dev/null
    done
  fi
  for conns in $connections; do
    threads=2
    [ "$conns" -gt 1 ] || threads=1
    for server in lossd fastapi; do
      port_var=${server}_port
      file="$out/wrk-$server-$name-c$conns.txt"
      log "wrk -t$threads -c$conns -d${seconds}s $server $route"
      wrk -t "$threads" -c "$conns" -d "${seconds}s" --latency \
        "http://127.0.0.1:${!port_var}$route" >"$file" 2>&1 \
        || die "wrk failed: $(cat "$file")"
      key="$route $conns $server"
      rps[$key]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$file")
      p99[$key]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$file")")
      [ -n "${rps[$key]}" ] || die "no Requests/sec in $file"
      errors=$(grep -E '^ *(Socket errors|Non-2xx or 3xx responses):' "$file" | sed 's/^ *//' | paste -sd ';' -) || true
      [ -z "$errors" ] || notes+=("$server $route c=$conns: $errors")
    done
  done
done

stop_servers
trap - EXIT

if [ -s "$out/lossd.stderr.log" ]; then
  lines=$(wc -l <"$out/lossd.stderr.log")
  gzip -1 -f "$out/lossd.stderr.log"
  log "lossd stderr: $lines lines, in $out/lossd.stderr.log.gz"
fi

# --- table ------------------------------------------------------------------

{
  printf '%-14s %5s %12s %12s %13s %13s %7s\n' \
    route conns "lossd req/s" "lossd p99" "fastapi req/s" "fastapi p99" ratio
  for route in $routes; do
    for conns in $connections; do
      l="$route $conns lossd"
      f="$route $conns fastapi"
      ratio=$(awk -v a="${rps[$l]}" -v b="${rps[$f]}" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
      printf '%-14s %5s %12s %12s %13s %13s %7s\n' "$route" "$conns" \
        "${rps[$l]}" "${p99[$l]} ms" "${rps[$f]}" "${p99[$f]} ms" "$ratio"
    done
  done
  for note in "${notes[@]+"${notes[@]}"}"; do
    echo "note: $note"
  done
} >"$out/table.txt"

log "raw wrk output, logs and table in $out"
cat "$out/table.txt"
