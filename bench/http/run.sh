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

# Python modules that must import in $venv.
modules=(fastapi uvicorn uvloop httptools)

# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_init

# --- tools ------------------------------------------------------------------

bench_check_system
bench_locate_lossd
bench_setup_venv

# --- servers ----------------------------------------------------------------

bench_start_servers bench/http/fastapi_app.py

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
      p99[$key]=$(wrk_p99_ms "$file")
      [ -n "${rps[$key]}" ] || die "no Requests/sec in $file"
      errors=$(wrk_errors "$file") || true
      [ -z "$errors" ] || notes+=("$server $route c=$conns: $errors")
    done
  done
done

bench_finish_servers

# --- table ------------------------------------------------------------------

{
  bench_pair_header 14 route
  for route in $routes; do
    for conns in $connections; do
      bench_pair_row 14 "$route" "$conns" "$route"
    done
  done
  bench_print_notes
} >"$out/table.txt"

bench_show_table
