# shellcheck shell=bash
# Shared parts of the wrk benchmarks (bench/http/run.sh, bench/loss/run.sh),
# sourced from the repository root after the caller's `set -euo pipefail`:
#
#   source bench/lib.sh
#
# The caller sets these globals first:
#   out       folder for raw wrk output, logs and the table
#   venv      Python venv for the FastAPI side
#   pins      array of "name==version" pins installed into $venv
#   modules   array of Python modules that must import in $venv
#
# Functions (in the order a run uses them):
#   log MSG... / die MSG...        "bench: MSG" on stderr (die: then exit 1)
#   bench_init                     mkdir $out, scratch folder $tmp, traps
#   stop_servers                   stop lossd, fastapi and $peer_pids (by pid), remove $tmp
#   bench_check_system             scripts/install-deps.sh --test, wrk present
#   bench_locate_lossd             build or find lossd (BENCH_BUILD, BENCH_LOSSD);
#                                  sets lossd_bin
#   bench_setup_venv               make $venv hold exactly $pins
#   wait_for_port PID FILE         the port a server prints on stdout
#   bench_start_servers APP.py     lossd --port 0 and the FastAPI app; sets
#                                  lossd_pid, lossd_port, fastapi_pid, fastapi_port
#   to_ms VALUE                    wrk latency (812.00us, 1.23ms, ...) in ms
#   wrk_p99_ms FILE                the 99% latency of wrk --latency output, in ms
#   wrk_errors FILE                wrk's socket-error / non-2xx lines, ';'-joined
#   bench_ratio A B                A / B as "1.23x", or "-" when B is 0
#   bench_finish_servers           stop_servers, drop the EXIT trap, gzip the
#                                  lossd stderr log

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

# --- setup ------------------------------------------------------------------

bench_init() {
  mkdir -p "$out"
  tmp=$(mktemp -d)
  lossd_pid=
  fastapi_pid=
  peer_pids=
  trap stop_servers EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Stops the given processes: SIGTERM to all, then up to 5 s each before SIGKILL.
stop_pids() {
  local pid
  for pid in "$@"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# Prints the `notes` array as "note: ..." lines (inside a table's block).
bench_print_notes() {
  local note
  for note in "${notes[@]+"${notes[@]}"}"; do
    echo "note: $note"
  done
}

# The header of a lossd-beside-fastapi table whose first column is WIDTH wide and named FIRST.
bench_pair_header() {  # WIDTH FIRST
  printf "%-${1}s %5s %12s %12s %13s %13s %7s\n" "$2" conns "lossd req/s" "lossd p99" "fastapi req/s" "fastapi p99" ratio
}

# One row of that table: the req/s and p99 recorded (in the caller's `rps` and `p99`
# arrays) under "KEY CONNS lossd" and "KEY CONNS fastapi", and their ratio.
bench_pair_row() {  # WIDTH LABEL CONNS KEY
  local width=$1 label=$2 conns=$3 key=$4
  local l="$key $conns lossd" f="$key $conns fastapi"
  printf "%-${width}s %5s %12s %12s %13s %13s %7s\n" "$label" "$conns" \
    "${rps[$l]}" "${p99[$l]} ms" "${rps[$f]}" "${p99[$f]} ms" "$(bench_ratio "${rps[$l]}" "${rps[$f]}")"
}

# The header of a lossd-beside-PEER table that also compares tail latency: ratio is
# lossd req/s / PEER req/s, p99 ratio lossd p99 / PEER p99 (below 1: lossd's is shorter).
bench_peer_header() {  # WIDTH FIRST PEER
  printf "%-${1}s %5s %12s %12s %17s %17s %7s %9s\n" "$2" conns "lossd req/s" "lossd p99" "$3 req/s" "$3 p99" ratio "p99 ratio"
}

bench_peer_row() {  # WIDTH LABEL CONNS KEY PEER
  local width=$1 label=$2 conns=$3 key=$4 peer=$5
  local l="$key $conns lossd" f="$key $conns $peer"
  printf "%-${width}s %5s %12s %12s %17s %17s %7s %9s\n" "$label" "$conns" \
    "${rps[$l]}" "${p99[$l]} ms" "${rps[$f]}" "${p99[$f]} ms" "$(bench_ratio "${rps[$l]}" "${rps[$f]}")" \
    "$(bench_ratio "${p99[$l]}" "${p99[$f]}")"
}

# Says where the raw output is and prints the table ($out/table.txt).
bench_show_table() {
  log "raw wrk output, logs and table in $out"
  cat "$out/table.txt"
}

# Stops what this script started (by pid), then removes the scratch folder.
stop_servers() {
  # shellcheck disable=SC2086  # empty pids vanish
  stop_pids $lossd_pid $fastapi_pid $peer_pids
  lossd_pid=
  fastapi_pid=
  peer_pids=
  rm -rf -- "$tmp"
}

# --- tools ------------------------------------------------------------------

bench_check_system() {
  scripts/install-deps.sh --test || die "missing system packages (see above)"
  command -v wrk >/dev/null || die "wrk not found"
}

# The project's release build (kernels' instruction set chosen at start-up), the
# binary that `make run` starts.
bench_locate_lossd() {
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
}

# True when $venv has every pin at its version and every module imports.
bench_tools_ready() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" - "${pins[@]}" -- "${modules[@]}" >/dev/null 2>&1 <<'PY'
import importlib, sys
from importlib import metadata
args = sys.argv[1:]
sep = args.index("--")
for pin in args[:sep]:
    name, version = pin.split("==")
    if metadata.version(name) != version:
        sys.exit(1)
for module in args[sep + 1:]:
    importlib.import_module(module)
PY
}

bench_setup_venv() {
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
}

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

# bench_start_servers APP: lossd (default settings, a scratch data dir) and
# the FastAPI app APP under $venv, each on a free port.
bench_start_servers() {
  local app=$1
  "$lossd_bin" --port 0 --data-dir "$tmp/data" >"$tmp/lossd.stdout" 2>"$out/lossd.stderr.log" &
  lossd_pid=$!
  lossd_port=$(wait_for_port "$lossd_pid" "$tmp/lossd.stdout") \
    || { tail -n 20 "$out/lossd.stderr.log" >&2; die "lossd did not start"; }

  "$venv/bin/python" "$app" >"$tmp/fastapi.stdout" 2>"$out/fastapi.stderr.log" &
  fastapi_pid=$!
  fastapi_port=$(wait_for_port "$fastapi_pid" "$tmp/fastapi.stdout") \
    || { tail -n 20 "$out/fastapi.stderr.log" >&2; die "fastapi did not start"; }

  log "lossd on :$lossd_port (pid $lossd_pid), fastapi on :$fastapi_port (pid $fastapi_pid)"
}

# Starts "$lossd_bin" alone on a free port with its JSON log (the access log's `ms` is the
# server-side time); sets lossd_pid and lossd_port. $1: what the peer runs in, for the log.
bench_start_lossd_json() {
  "$lossd_bin" --port 0 --data-dir "$tmp/data" --log-format json >"$tmp/lossd.stdout" 2>"$out/lossd.stderr.log" &
  lossd_pid=$!
  lossd_port=$(wait_for_port "$lossd_pid" "$tmp/lossd.stdout") \
    || { tail -n 20 "$out/lossd.stderr.log" >&2; die "lossd did not start"; }
  log "lossd $("$lossd_bin" --version 2>/dev/null || echo "?") on :$lossd_port (pid $lossd_pid); $1"
}

# Stops both servers after the measurements and compresses lossd's stderr
# (one access-log line per request).
bench_finish_servers() {
  local lines
  stop_servers
  trap - EXIT

  if [ -s "$out/lossd.stderr.log" ]; then
    lines=$(wc -l <"$out/lossd.stderr.log")
    gzip -1 -f "$out/lossd.stderr.log"
    log "lossd stderr: $lines lines, in $out/lossd.stderr.log.gz"
  fi
}

# --- wrk output -------------------------------------------------------------

# wrk prints latencies as 812.00us, 1.23ms, 2.00s or 1.50m: in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    else if (u == "h") n *= 3600000; else if (u != "ms") { print "?"; exit }
    printf "%.3f", n }'
}

wrk_p99_ms() {
  to_ms "$(awk '$1 == "99%" { print $2 }' "$1")"
}

wrk_errors() {
  grep -E '^ *(Socket errors|Non-2xx or 3xx responses):' "$1" | sed 's/^ *//' | paste -sd ';' -
}

bench_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'
}
