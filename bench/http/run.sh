#!/usr/bin/env bash
# HTTP-layer benchmark: lossd against a minimal FastAPI app (uvicorn) and a
# minimal Hummingbird 2 app (SwiftNIO), all on loopback, driven by wrk, on
# GET /healthz and GET /openapi.yaml.
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
#   hummingbird  bench/http/hummingbird-peer: a throwaway package (Hummingbird 2.28,
#            SwiftNIO; built here in release mode into .build-hummingbird, never by
#            the project's build) answering the same two routes with the same
#            bytes: its defaults, an event loop per core, no per-request log.
#   wrk      for each route x connections (1, 16, 256): -t1 for 1 connection,
#            -t2 otherwise, --latency, BENCH_SECONDS each, lossd then each peer.
# wrk shares the machine's cores with the server it drives, so the numbers
# compare the two servers on the same machine; they are not capacity figures.
#
# Environment:
#   BENCH_SECONDS      seconds per wrk run (default 5)
#   BENCH_WARMUP       seconds of warm-up per server and route, not reported (default 1; 0: none)
#   BENCH_CONNECTIONS  connection counts (default "1 16 256")
#   BENCH_ROUTES       routes (default "/healthz /openapi.yaml")
#   BENCH_PEERS        the servers lossd is measured beside (default "fastapi hummingbird")
#   BENCH_VENV         Python venv for FastAPI (default .venv-bench, git-ignored)
#   BENCH_BUILD        0: use the existing .build/release/lossd, do not build
#   BENCH_LOSSD        a lossd binary to use instead (nothing is built)
#   BENCH_OUT          folder for raw wrk output, logs and the table
#                      (default bench/results/http-<UTC time>, git-ignored)
# Prints the tables last, one per peer: route, conns, lossd req/s, lossd p99, the
# peer's req/s and p99, ratio (lossd req/s / peer req/s) and, beside Hummingbird,
# p99 ratio (lossd p99 / peer p99).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${BENCH_SECONDS:-5}
warmup=${BENCH_WARMUP:-1}
connections=${BENCH_CONNECTIONS:-"1 16 256"}
routes=${BENCH_ROUTES:-"/healthz /openapi.yaml"}
peers=${BENCH_PEERS:-"fastapi hummingbird"}
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

if [[ " $peers " == *" hummingbird "* ]]; then
  # Built before any server starts (a first build takes minutes on 2 cores).
  log "building the Hummingbird peer (bench/http/hummingbird-peer, release)"
  if ! swift build -c release --package-path bench/http/hummingbird-peer --scratch-path .build-hummingbird \
    >"$out/hummingbird-build.log" 2>&1; then
    tail -n 30 "$out/hummingbird-build.log" >&2
    die "the Hummingbird peer did not build (full log: $out/hummingbird-build.log)"
  fi
fi

bench_start_servers bench/http/fastapi_app.py

if [[ " $peers " == *" hummingbird "* ]]; then
  hummingbird_bin=.build-hummingbird/release/HummingbirdPeer
  "$hummingbird_bin" 0 openapi.yaml >"$tmp/hummingbird.stdout" 2>"$out/hummingbird.stderr.log" &
  peer_pids="$peer_pids $!"
  hummingbird_port=$(wait_for_port "$!" "$tmp/hummingbird.stdout") \
    || { tail -n 20 "$out/hummingbird.stderr.log" >&2; die "the Hummingbird peer did not start"; }
  log "hummingbird on :$hummingbird_port"
fi

# Every server must answer 200 on every route before anything is measured.
for route in $routes; do
  for server in lossd $peers; do
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
  [[ " $peers " != *" hummingbird "* ]] || echo "hummingbird: Hummingbird $(sed -n 's/.*hummingbird.git", from: "\([0-9.]*\)".*/\1/p' bench/http/hummingbird-peer/Package.swift) or later, release build"
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
    for server in lossd $peers; do
      port_var=${server}_port
      wrk -t 1 -c 4 -d "${warmup}s" "http://127.0.0.1:${!port_var}$route" >/dev/null
    done
  fi
  for conns in $connections; do
    threads=2
    [ "$conns" -gt 1 ] || threads=1
    for server in lossd $peers; do
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
  first=1
  for peer in $peers; do
    [ "$first" = 1 ] || echo
    first=0
    bench_peer_header 14 route "$peer"
    for route in $routes; do
      for conns in $connections; do
        bench_peer_row 14 "$route" "$conns" "$route" "$peer"
      done
    done
  done
  bench_print_notes
} >"$out/table.txt"

bench_show_table
