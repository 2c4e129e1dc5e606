#!/usr/bin/env bash
# Soak test of the release build of lossd, on 127.0.0.1 only:
#
#   bench/soak/run.sh                  # 60 s
#   SOAK_SECONDS=20 bench/soak/run.sh
#
# For SOAK_SECONDS, all at once against one lossd (a free port, a scratch
# data dir):
#   - wrk: SOAK_CONNECTIONS (200) keep-alive connections cycling through
#     GET /healthz, GET /v1/losses and POST /v1/loss (bench/soak/mix.lua);
#   - SOAK_IDLE (300) slow connections (bench/soak/soak.py idle): each sends
#     GET /healthz in pieces 2 s apart (under the 10 s header timeout), then
#     idles 15-25 s on keep-alive (under the 60 s timeout), and again;
#   - SOAK_REAL (3) threads sending what training and evaluation jobs send
#     (bench/soak/soak.py real): 2.7 MB JSON losses with and without the
#     gradient, gzip and multipart (.npy) bodies, calibrator fits and applies,
#     an aggregation; on keep-alive connections, every tenth on a new one;
#   - a probe: GET /healthz on a fresh connection every 0.5 s, 2 s timeout;
#   - lossd's RSS from /proc, every second: at the start, after the warm-up
#     (SOAK_WARMUP s, default 60, or a fifth of a shorter soak), peak, end.
# Then prints a summary (also in bench/results/soak-*/summary.txt) and exits
# 1 if wrk saw any non-2xx or socket error (timeouts included), a realistic
# request got anything but 200/201, a probe failed, a slow connection was
# dropped or answered with non-200, RSS at the end exceeds RSS after the
# warm-up by more than SOAK_RSS_SLACK_MIB (default 64), or lossd did not exit
# 0 on SIGTERM. Everything stops by itself.
#
# Environment:
#   SOAK_SECONDS      duration (default 60)
#   SOAK_CONNECTIONS  wrk connections (default 200)
#   SOAK_THREADS      wrk threads (default: nproc, at most 4)
#   SOAK_IDLE         slow/idle connections (default 300)
#   SOAK_REAL         threads sending realistic large requests (default 3; 0: none)
#   SOAK_BUILD        0: do not run scripts/build-release.sh
#   SOAK_LOSSD        a lossd binary to use instead of the release build
#   SOAK_API_KEY      when set: lossd runs with LOSSD_API_KEY and every
#                     load sends it as a bearer token
#   SOAK_LOG_LEVEL    lossd's log level (default warning: no access log)
#   SOAK_TLS          1: lossd serves HTTPS (--tls-cert/--tls-key with a P-256
#                     certificate made here) and every load speaks TLS
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${SOAK_SECONDS:-60}
connections=${SOAK_CONNECTIONS:-200}
idle=${SOAK_IDLE:-300}
real=${SOAK_REAL:-3}
warmup=${SOAK_WARMUP:-$(( seconds >= 300 ? 60 : seconds / 5 ))}
rss_slack_mib=${SOAK_RSS_SLACK_MIB:-64}
threads=${SOAK_THREADS:-$(n=$(nproc); [ "$n" -gt 4 ] && n=4; echo "$n")}
out=bench/results/soak-$(date -u +%Y%m%dT%H%M%SZ)

log() { echo "soak: $*" >&2; }
die() { log "$*"; exit 1; }

command -v wrk >/dev/null || die "wrk not found (scripts/install-deps.sh --test)"
command -v python3 >/dev/null || die "python3 not found"
[[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -ge 5 ] || die "SOAK_SECONDS must be an integer >= 5"

# 500+ sockets for lossd and the Python side.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((connections + idle + 64)) ] || die "ulimit -n is $(ulimit -n): too low"

mkdir -p "$out"
tmp=$(mktemp -d)
lossd_pid=
side_pids=()

cleanup() {
  local pid
  for pid in "${side_pids[@]}" $lossd_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${side_pids[@]}" $lossd_pid; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- lossd --------------------------------------------------------------------

if [ -n "${SOAK_LOSSD:-}" ]; then
  lossd_bin=$SOAK_LOSSD
else
  if [ "${SOAK_BUILD:-1}" != 0 ]; then
    log "building lossd (scripts/build-release.sh)"
    if ! bash scripts/build-release.sh >"$out/build.log" 2>&1; then
      tail -n 30 "$out/build.log" >&2
      die "release build failed (full log: $out/build.log)"
    fi
  fi
  lossd_bin=$(swift build -c release --show-bin-path)/lossd
fi
[ -x "$lossd_bin" ] || die "$lossd_bin not found"

# Only our settings: no LOSSD_* from the caller's environment.
lossd_env=(env)
while IFS= read -r name; do lossd_env+=(-u "$name"); done < <(env | sed -n 's/^\(LOSSD_[A-Za-z0-9_]*\)=.*/\1/p')
[ -n "${SOAK_API_KEY:-}" ] && lossd_env+=("LOSSD_API_KEY=$SOAK_API_KEY")

scheme=http
tls_args=()
if [ "${SOAK_TLS:-0}" = 1 ]; then
  command -v openssl >/dev/null || die "openssl not found (scripts/install-deps.sh --test)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
  tls_args=(--tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem")
  export SOAK_CAFILE=$tmp/cert.pem  # for soak.py's idle connections and probes
  scheme=https
fi

"${lossd_env[@]}" "$lossd_bin" --host 127.0.0.1 --port 0 --data-dir "$tmp/data" "${tls_args[@]+"${tls_args[@]}"}" \
  --log-level "${SOAK_LOG_LEVEL:-warning}" >"$tmp/lossd.stdout" 2>"$out/lossd.stderr.log" &
lossd_pid=$!
port=
for _ in $(seq 300); do
  port=$(sed -n 's|.*listening on https\{0,1\}://.*:\([0-9][0-9]*\).*|\1|p' "$tmp/lossd.stdout" | head -n 1)
  [ -n "$port" ] && break
  kill -0 "$lossd_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { tail -n 20 "$out/lossd.stderr.log" >&2; die "lossd did not start"; }
log "lossd $lossd_bin on 127.0.0.1:$port (pid $lossd_pid); ${seconds}s: wrk -c$connections -t$threads, $idle slow connections, $real realistic senders, probe every 0.5 s"

# --- load -------------------------------------------------------------------

# The side loads start 2 s before wrk and end 2 s after it; `timeout` bounds
# each in case it hangs.
side=$((seconds + 4))
timeout $((side + 30)) python3 bench/soak/soak.py rss --pid "$lossd_pid" --seconds "$side" \
  --warmup "$warmup" --samples "$out/rss.txt" >"$tmp/rss.json" &
side_pids+=($!)
echo '{"requests": 0, "errors": 0}' >"$tmp/real.json"
if [ "$real" -gt 0 ]; then
  timeout $((side + 120)) python3 bench/soak/soak.py real --port "$port" --seconds "$seconds" \
    --workers "$real" >"$tmp/real.json" 2>"$out/real.stderr.log" &
  side_pids+=($!)
fi
timeout $((side + 45)) python3 bench/soak/soak.py idle --port "$port" --seconds "$side" \
  --connections "$idle" >"$tmp/idle.json" 2>"$out/idle.stderr.log" &
side_pids+=($!)
timeout $((side + 30)) python3 bench/soak/soak.py probe --port "$port" --seconds "$side" \
  >"$tmp/probe.json" 2>"$out/probe.stderr.log" &
side_pids+=($!)

sleep 2
wrk_rc=0
timeout $((seconds + 30)) wrk -t"$threads" -c"$connections" -d"${seconds}s" --timeout 5s --latency \
  -s bench/soak/mix.lua "$scheme://127.0.0.1:$port" >"$out/wrk.txt" 2>&1 || wrk_rc=$?

for pid in "${side_pids[@]}"; do wait "$pid" || log "side load pid $pid exited $?"; done
side_pids=()

# SIGTERM: lossd must drain and exit 0 within its 10 s grace.
lossd_alive=yes
kill -0 "$lossd_pid" 2>/dev/null || lossd_alive=no
kill -TERM "$lossd_pid" 2>/dev/null || true
lossd_rc=
for _ in $(seq 150); do
  if ! kill -0 "$lossd_pid" 2>/dev/null; then
    lossd_rc=0; wait "$lossd_pid" || lossd_rc=$?
    break
  fi
  sleep 0.1
done
[ -n "$lossd_rc" ] || { kill -KILL "$lossd_pid" 2>/dev/null || true; wait "$lossd_pid" 2>/dev/null || true; lossd_rc="killed (no exit 15 s after SIGTERM)"; }
lossd_pid=

# --- summary ----------------------------------------------------------------

json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null || echo "?"; }
num() { [[ ${1:-} =~ ^[0-9]+$ ]] && echo "$1" || echo 0; }

requests=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$out/wrk.txt")
rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out/wrk.txt")
p99=$(awk '$1 == "99%" { print $2 }' "$out/wrk.txt")
non2xx=$(num "$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$out/wrk.txt")")
socket_line=$(sed -n 's/^ *Socket errors: *//p' "$out/wrk.txt")
socket_errors=0
if [ -n "$socket_line" ]; then
  socket_errors=$(echo "$socket_line" | tr -c '0-9\n' ' ' | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; print s }')
fi
statuses=$(sed -n 's/^statuses: //p' "$out/wrk.txt")
peak_kib=$(json "$tmp/rss.json" peak_kib)
first_kib=$(json "$tmp/rss.json" first_kib)
last_kib=$(json "$tmp/rss.json" last_kib)
warm_kib=$(json "$tmp/rss.json" warm_kib)
real_n=$(json "$tmp/real.json" requests)
real_errors=$(json "$tmp/real.json" errors)
real_kinds=$(json "$tmp/real.json" by_kind)
real_error_kinds=$(json "$tmp/real.json" error_kinds)
real_mb=$(json "$tmp/real.json" sent_mb)
real_p99=$(json "$tmp/real.json" p99_ms)
probe_n=$(json "$tmp/probe.json" probes)
probe_fail=$(json "$tmp/probe.json" failures)
probe_max=$(json "$tmp/probe.json" max_ms)
probe_p99=$(json "$tmp/probe.json" p99_ms)
probe_kinds=$(json "$tmp/probe.json" failure_kinds)
idle_opened=$(json "$tmp/idle.json" opened)
idle_max=$(json "$tmp/idle.json" max_open)
idle_ok=$(json "$tmp/idle.json" ok)
idle_non200=$(json "$tmp/idle.json" non_200)
idle_errors=$(json "$tmp/idle.json" errors)
idle_kinds=$(json "$tmp/idle.json" error_kinds)
mib() { [[ ${1:-} =~ ^[0-9]+$ ]] && awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }' || echo "?"; }

{
  echo "soak: ${seconds}s, lossd on $scheme://127.0.0.1:$port, wrk -t$threads -c$connections, $idle slow connections"
  echo "wrk requests:          ${requests:-?} (${rps:-?} req/s, p99 ${p99:-?}), statuses: ${statuses:-?}"
  echo "wrk non-2xx:           $non2xx"
  echo "wrk socket errors:     $socket_errors${socket_line:+ ($socket_line)}"
  echo "realistic requests:    ${real_n} (${real_mb} MB sent), ${real_errors} errors ${real_error_kinds}"
  echo "                       by kind ${real_kinds}"
  echo "                       p99 ms ${real_p99}"
  echo "lossd RSS:             start $(mib "$first_kib"), after ${warmup}s warm-up $(mib "$warm_kib"), peak $(mib "$peak_kib"), end $(mib "$last_kib")"
  echo "healthz probe:         $probe_n probes, $probe_fail failures ${probe_kinds}, max ${probe_max} ms, p99 ${probe_p99} ms"
  echo "slow connections:      $idle_opened opened (max $idle_max open at once), $idle_ok slow requests answered 200, $idle_non200 non-200, $idle_errors errors ${idle_kinds}"
  echo "lossd at the end:      alive=$lossd_alive, exit after SIGTERM: $lossd_rc"
} | tee "$out/summary.txt"

status=0
[ "$wrk_rc" -eq 0 ] || { log "FAIL: wrk exited $wrk_rc"; status=1; }
[[ ${requests:-} =~ ^[0-9]+$ ]] && [ "$requests" -gt 0 ] || { log "FAIL: wrk made no requests"; status=1; }
[ "$non2xx" -eq 0 ] || { log "FAIL: $non2xx non-2xx responses"; status=1; }
[ "$socket_errors" -eq 0 ] || { log "FAIL: $socket_errors socket errors"; status=1; }
[ "$(num "$probe_n")" -gt 0 ] && [ "$probe_fail" = 0 ] || { log "FAIL: healthz probes: $probe_fail failures of $probe_n"; status=1; }
[ "$idle_errors" = 0 ] && [ "$idle_non200" = 0 ] && [ "$(num "$idle_ok")" -gt 0 ] \
  || { log "FAIL: slow connections: $idle_errors errors, $idle_non200 non-200, $idle_ok ok"; status=1; }
[ "$lossd_alive" = yes ] && [ "$lossd_rc" = 0 ] || { log "FAIL: lossd alive=$lossd_alive, exit $lossd_rc"; status=1; }
[ "$(num "$real_errors")" -eq 0 ] && [ "$real_errors" = 0 ] || { log "FAIL: realistic requests: $real_errors errors"; status=1; }
if [[ ${warm_kib:-} =~ ^[0-9]+$ && ${last_kib:-} =~ ^[0-9]+$ ]] && [ $((last_kib - warm_kib)) -gt $((rss_slack_mib * 1024)) ]; then
  log "FAIL: RSS grew $(( (last_kib - warm_kib) / 1024 )) MiB after the warm-up (slack ${rss_slack_mib} MiB)"; status=1
fi
[ "$status" -eq 0 ] && log "passed (results in $out)" || log "failed (results in $out)"
exit "$status"
