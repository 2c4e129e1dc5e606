#!/usr/bin/env bash
# Calibrator-store benchmark: calibrate-by-name (POST /v1/calibrators/NAME/apply)
# throughput with the embedded SQLite store, with one lossd on a PostgreSQL store,
# and with two lossd processes on the same PostgreSQL database, driven by wrk.
#
#   bench/store/run.sh
#   BENCH_SECONDS=3 BENCH_BUILD=0 bench/store/run.sh
#
# What runs:
#   postgres  scripts/postgres-test-server.sh start: a throwaway server on loopback
#             (Debian `postgresql` binaries, fsync on), database `lossd`; stopped and
#             deleted at the end.
#   lossd     scripts/build-release.sh, then the release binary with --port 0
#             --threads 1 --log-level warning (no access log), one process per
#             server below. ONE handler thread per process, so that 1 vs 2 processes
#             is a fair comparison on a 2-core machine (two processes of --threads 1
#             have the handler threads that one process of --threads 2 would have).
#             The pool (--store-pool-size) is the default: 1 connection per process.
#   setups    sqlite     1 process, calibrators.sqlite in a scratch --data-dir
#             pg-1       1 process, --store postgres://...
#             pg-2       2 processes, both --store on the same database
#   request   a temperature calibrator PUT first (to each store; on pg-2 PUT on one
#             process, and the other must GET it), then POST .../apply with logits
#             64 x 10 (fixed seed, 4 decimals). Every server must answer 200 with the
#             same probabilities before anything is measured.
#   wrk       two wrk processes in parallel in every setup (-t1, half the connections
#             each, --latency, BENCH_SECONDS, bench/loss/post_body.lua): both against
#             the one server, or one against each of pg-2's servers. req/s is their
#             sum, p99 the larger of the two, non-2xx their sum.
# The servers, PostgreSQL and wrk share the machine's cores: compare the rows with
# each other, they are not capacity figures.
#
# Environment:
#   BENCH_SECONDS      seconds per wrk run (default 10)
#   BENCH_WARMUP       seconds of warm-up per setup, not reported (default 1; 0: none)
#   BENCH_CONNECTIONS  total connection counts, even numbers (default "16")
#   BENCH_BUILD        0: use the existing release build, do not build
#   BENCH_LOSSD        a lossd binary to use instead (nothing is built)
#   BENCH_OUT          folder for raw wrk output, logs and the table
#                      (default bench/results/store-<UTC time>, git-ignored)
# Prints the table last: setup, processes, connections, req/s, p99, non-2xx.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${BENCH_SECONDS:-10}
warmup=${BENCH_WARMUP:-1}
connections=${BENCH_CONNECTIONS:-"16"}
out=${BENCH_OUT:-bench/results/store-$(date -u +%Y%m%dT%H%M%SZ)}
rows=64
classes=10
seed=20261130
name=bench-temperature
calibrator='{"method":"temperature","params":{"temperature":1.5},"classes":10}'

# log, die, bench_check_system, bench_locate_lossd, wait_for_port, wrk_p99_ms.
# shellcheck source=bench/lib.sh
source bench/lib.sh

for conns in $connections; do
  [[ "$conns" =~ ^[0-9]+$ ]] && [ "$conns" -ge 2 ] && [ $((conns % 2)) -eq 0 ] \
    || die "BENCH_CONNECTIONS: $conns is not an even number >= 2 (two wrk processes share them)"
done

mkdir -p "$out"
tmp=$(mktemp -d)
pids=()
pg_dir=

# Stops the lossd processes this script started (by pid).
stop_lossd() {
  stop_pids "${pids[@]+"${pids[@]}"}"
  pids=()
}

cleanup() {
  stop_lossd
  if [ -n "$pg_dir" ]; then
    bash scripts/postgres-test-server.sh stop "$pg_dir" || true
  fi
  rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools ------------------------------------------------------------------

bench_check_system
bench_locate_lossd
[ -f scripts/postgres-test-server.sh ] || die "scripts/postgres-test-server.sh not found"

# --- PostgreSQL ---------------------------------------------------------------

log "starting PostgreSQL (scripts/postgres-test-server.sh)"
# It prints `export LOSSD_TEST_POSTGRES_URL=... LOSSD_TEST_PGCTL=... LOSSD_TEST_PGDIR=...`.
# The directory is its own (under /tmp, owned by the server's user), not under $tmp.
pg_env=$(bash scripts/postgres-test-server.sh start 2>"$out/postgres-start.log") \
  || { cat "$out/postgres-start.log" >&2; die "PostgreSQL did not start (Debian package postgresql installed?)"; }
eval "$pg_env"
pg_dir=$LOSSD_TEST_PGDIR
pg_url=$LOSSD_TEST_POSTGRES_URL
log "PostgreSQL on ${pg_url##*@} (data in $pg_dir)"

# --- request body -------------------------------------------------------------

body=$tmp/apply.json
awk -v rows="$rows" -v classes="$classes" -v seed="$seed" 'BEGIN {
  srand(seed)
  printf "{\"logits\":["
  for (i = 0; i < rows; i++) {
    printf "%s[", (i ? "," : "")
    for (j = 0; j < classes; j++) printf "%s%.4f", (j ? "," : ""), (rand() - 0.5) * 8
    printf "]"
  }
  printf "]}"
}' >"$body"
export BENCH_BODY=$body
log "request body: ${rows}x${classes} logits, $(wc -c <"$body") bytes"

# --- servers ------------------------------------------------------------------

# start_lossd LABEL ARGS...: one lossd process with --threads 1; sets started_port.
start_lossd() {
  local label=$1 pid
  shift
  "$lossd_bin" --port 0 --threads 1 --log-level warning "$@" \
    >"$tmp/$label.stdout" 2>"$out/$label.stderr.log" &
  pid=$!
  pids+=("$pid")
  started_port=$(wait_for_port "$pid" "$tmp/$label.stdout") \
    || { tail -n 20 "$out/$label.stderr.log" >&2; die "lossd $label did not start"; }
  log "lossd $label on :$started_port (pid $pid)"
}

# apply_url PORT: the calibrate-by-name URL on that server.
apply_url() { echo "http://127.0.0.1:$1/v1/calibrators/$name/apply"; }

# expect_status WANT METHOD URL [BODY]: curl, and die unless the status is WANT.
# The response body lands in $tmp/response.
expect_status() {
  local want=$1 method=$2 url=$3 data=${4:-} status
  local args=(-s -o "$tmp/response" -w '%{http_code}' -X "$method")
  [ -z "$data" ] || args+=(-H 'Content-Type: application/json' --data-binary "$data")
  status=$(curl "${args[@]}" "$url") || status=000
  [ "$status" = "$want" ] || die "$method $url answered $status, not $want: $(head -c 300 "$tmp/response" 2>/dev/null)"
}

# --- measurements -------------------------------------------------------------

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(nproc) cores, $(uname -sr)"
  echo "lossd: $("$lossd_bin" --version 2>/dev/null || echo '?') ($lossd_bin), --threads 1 per process"
  if command -v psql >/dev/null 2>&1; then
    echo "postgresql: $(psql "$pg_url" -qAtc 'SHOW server_version' 2>/dev/null || echo '?')"
  fi
  echo "wrk: $(wrk -v 2>&1 | head -n 1)"
  echo "request: POST /v1/calibrators/$name/apply, ${rows}x${classes} logits"
  echo "seconds per run: $seconds, warm-up: ${warmup}s"
} >"$out/environment.txt"
sed 's/^/bench: /' "$out/environment.txt" >&2

setups=(sqlite pg-1 pg-2)
declare -A procs rps p99 non2xx
notes=()
reference=

for setup in "${setups[@]}"; do
  ports=()
  case "$setup" in
    sqlite)
      start_lossd sqlite --data-dir "$tmp/data-sqlite"
      ports=("$started_port")
      ;;
    pg-1)
      start_lossd pg-1 --store "$pg_url"
      ports=("$started_port")
      ;;
    pg-2)
      start_lossd pg-2a --store "$pg_url"
      ports=("$started_port")
      start_lossd pg-2b --store "$pg_url"
      ports+=("$started_port")
      ;;
  esac
  procs[$setup]=${#ports[@]}

  # The calibrator: PUT on the first server (201 the first time, 200 when pg-1 left
  # it in the database); every other server must see it at once.
  status=$(curl -s -o "$tmp/response" -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    --data-binary "$calibrator" "http://127.0.0.1:${ports[0]}/v1/calibrators/$name") || status=000
  case "$status" in 200|201) ;; *) die "$setup: PUT answered $status: $(head -c 300 "$tmp/response")" ;; esac
  for port in "${ports[@]}"; do
    expect_status 200 GET "http://127.0.0.1:$port/v1/calibrators/$name"
    expect_status 200 POST "http://127.0.0.1:$port/v1/calibrators/$name/apply" "@$body"
    # The same answer everywhere (same calibrator, same binary).
    answer=$(md5sum <"$tmp/response" | cut -d' ' -f1)
    if [ -z "$reference" ]; then
      reference=$answer
      grep -q '"probs"' "$tmp/response" || die "$setup: apply answered no probs: $(head -c 300 "$tmp/response")"
    fi
    [ "$answer" = "$reference" ] || die "$setup :$port answered other probabilities than the first server"
    log "$setup :$port: apply 200, $(wc -c <"$tmp/response") bytes"
  done

  # Two wrk processes: against ports[0] and ports[1], or both against ports[0].
  targets=("${ports[0]}" "${ports[${#ports[@]}-1]}")
  if [ "$warmup" != 0 ]; then
    wrk -t1 -c2 -d"${warmup}s" -s bench/loss/post_body.lua "$(apply_url "${targets[0]}")" >/dev/null 2>&1 &
    w1=$!
    wrk -t1 -c2 -d"${warmup}s" -s bench/loss/post_body.lua "$(apply_url "${targets[1]}")" >/dev/null 2>&1 &
    w2=$!
    wait "$w1" || true
    wait "$w2" || true
  fi
  for conns in $connections; do
    half=$((conns / 2))
    files=()
    wpids=()
    log "$setup: 2 x wrk -t1 -c$half -d${seconds}s"
    for i in 0 1; do
      file="$out/wrk-$setup-c$conns-$((i + 1)).txt"
      files+=("$file")
      wrk -t1 -c"$half" -d"${seconds}s" --latency --timeout 10s -s bench/loss/post_body.lua \
        "$(apply_url "${targets[$i]}")" >"$file" 2>&1 &
      wpids+=($!)
    done
    for i in 0 1; do
      wait "${wpids[$i]}" || die "wrk failed: $(cat "${files[$i]}")"
    done
    key="$setup $conns"
    total=0
    worst=0
    bad=0
    for file in "${files[@]}"; do
      r=$(awk '/^Requests\/sec:/ { print $2 }' "$file")
      [ -n "$r" ] || die "no Requests/sec in $file"
      total=$(awk -v a="$total" -v b="$r" 'BEGIN { printf "%.1f", a + b }')
      p=$(wrk_p99_ms "$file")
      worst=$(awk -v a="$worst" -v b="$p" 'BEGIN { print (b + 0 > a + 0) ? b : a }')
      n=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$file")
      bad=$((bad + ${n:-0}))
      socket=$(grep -E '^ *Socket errors:' "$file" | sed 's/^ *//' || true)
      [ -z "$socket" ] || notes+=("$setup c=$conns $(basename "$file"): $socket")
    done
    rps[$key]=$(printf '%.0f' "$total")
    p99[$key]=$worst
    non2xx[$key]=$bad
  done
  stop_lossd
done

# --- table --------------------------------------------------------------------

{
  printf '%-8s %9s %11s %9s %11s %8s\n' setup processes connections "req/s" p99 non-2xx
  for setup in "${setups[@]}"; do
    for conns in $connections; do
      key="$setup $conns"
      printf '%-8s %9s %11s %9s %11s %8s\n' "$setup" "${procs[$setup]}" "$conns" \
        "${rps[$key]}" "${p99[$key]} ms" "${non2xx[$key]}"
    done
  done
  for conns in $connections; do
    echo "pg-2 / pg-1 at $conns connections: $(bench_ratio "${rps[pg-2 $conns]}" "${rps[pg-1 $conns]}")," \
      "pg-1 / sqlite: $(bench_ratio "${rps[pg-1 $conns]}" "${rps[sqlite $conns]}")"
  done
  bench_print_notes
} >"$out/table.txt"

bench_show_table
