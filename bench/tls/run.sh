#!/usr/bin/env bash
# TLS cost benchmark: the same lossd binary served plain and with --tls-cert/--tls-key,
# both on loopback, driven by wrk. Measures keep-alive throughput on a small and a large
# response, and full handshakes (Connection: close, one TLS handshake per request).
#
#   bench/tls/run.sh
#   BENCH_SECONDS=3 BENCH_BUILD=0 bench/tls/run.sh
#
# Environment:
#   BENCH_SECONDS      seconds per wrk run (default 5)
#   BENCH_CONNECTIONS  connection counts (default "1 16 256")
#   BENCH_BUILD        0: use the existing release build, do not build
#   BENCH_LOSSD        a lossd binary to use instead (nothing is built)
#   BENCH_OUT          folder for raw wrk output (default bench/results/tls-<UTC time>)
# Both servers run with --log-level warning (no access log), 2 handler threads each.
# wrk shares the cores with the servers: compare the columns, they are not capacity figures.
# Prints: route, conns, plain req/s, TLS req/s, TLS/plain.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${BENCH_SECONDS:-5}
connections=${BENCH_CONNECTIONS:-"1 16 256"}
out=${BENCH_OUT:-bench/results/tls-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }

for tool in wrk curl openssl; do command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh --test)"; done

if [ -n "${BENCH_LOSSD:-}" ]; then
  lossd_bin=$BENCH_LOSSD
else
  if [ "${BENCH_BUILD:-1}" != 0 ]; then
    log "building lossd (scripts/build-release.sh)"
    bash scripts/build-release.sh >"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log" >&2; die "release build failed"; }
  fi
  lossd_bin=$(swift build -c release --show-bin-path)/lossd
fi
[ -x "$lossd_bin" ] || die "$lossd_bin not found"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null

# Starts lossd (not in a subshell, so that cleanup knows its pid); sets `port`.
start() {  # name, extra args...
  local name=$1; shift
  "$lossd_bin" --port 0 --threads 2 --log-level warning --data-dir "$tmp/data-$name" "$@" >"$tmp/$name.out" 2>"$out/$name.stderr.log" &
  pids+=($!)
  for _ in $(seq 100); do
    grep -q "listening on" "$tmp/$name.out" 2>/dev/null && break
    sleep 0.1
  done
  port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$tmp/$name.out")
}
start plain
plain_port=$port
start tls --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
tls_port=$port
[ -n "$plain_port" ] && [ -n "$tls_port" ] || die "a server did not start"
curl -sf "http://127.0.0.1:$plain_port/healthz" >/dev/null || die "plain server not answering"
curl -sf --cacert "$tmp/cert.pem" "https://localhost:$tls_port/healthz" >/dev/null || die "TLS server not answering"
log "plain on $plain_port, TLS on $tls_port ($("$lossd_bin" --version))"

rate() {  # url, conns, extra wrk args... -> req/s
  local url=$1 conns=$2; shift 2
  local threads=2
  [ "$conns" = 1 ] && threads=1
  local file="$out/wrk-$(echo "$url" | tr -c 'a-z0-9' '_')-$conns-$*.txt"
  wrk -t"$threads" -c"$conns" -d"${seconds}s" "$@" "$url" >"$file" 2>&1 || true
  awk '/Requests\/sec/ {print $2}' "$file"
}

table="$out/table.txt"
printf '%-34s %6s %12s %12s %10s\n' route conns "plain req/s" "TLS req/s" "TLS/plain" | tee "$table"
for route in /healthz /openapi.yaml; do
  for c in $connections; do
    p=$(rate "http://127.0.0.1:$plain_port$route" "$c")
    t=$(rate "https://127.0.0.1:$tls_port$route" "$c")
    printf '%-34s %6s %12s %12s %10s\n' "$route" "$c" "$p" "$t" "$(awk -v a="$t" -v b="$p" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-" }')" | tee -a "$table"
  done
done
for c in 1 16; do
  p=$(rate "http://127.0.0.1:$plain_port/healthz" "$c" -H "Connection: close")
  t=$(rate "https://127.0.0.1:$tls_port/healthz" "$c" -H "Connection: close")
  printf '%-34s %6s %12s %12s %10s\n' "/healthz, new connection each" "$c" "$p" "$t" "$(awk -v a="$t" -v b="$p" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-" }')" | tee -a "$table"
done
log "raw output in $out"
