#!/usr/bin/env bash
# End-to-end benchmark of POST /v1/loss: lossd against a FastAPI + NumPy app
# (uvicorn), both on loopback, driven by wrk with one ~2 MB JSON body.
#
#   bench/loss/run.sh
#   BENCH_SECONDS=3 bench/loss/run.sh
#
# The request: cross_entropy, reduction mean, logits 256 x 1000 float64 drawn
# from N(0, 2) with a fixed seed and rounded to 4 decimals (at most 6
# significant digits), as nested JSON arrays, and 256 labels. Two variants, one
# body file each: return_grad false (the answer is one number) and return_grad
# true (the answer also holds the 256 x 1000 gradient, about 5 MB of JSON).
#
# What runs:
#   lossd    scripts/build-release.sh, then .build/release/lossd --port 0 with
#            default settings: handler threads = cores, log level info, so
#            every request writes an access-log line to stderr (kept in
#            $BENCH_OUT/lossd.stderr.log.gz).
#   fastapi  bench/loss/fastapi_loss_app.py: uvicorn, 1 worker, uvloop +
#            httptools, --log-level warning and the access log off; orjson
#            parses the body and writes the answer, NumPy (float64) computes.
#   check    once per variant, curl POSTs the body to both servers; both must
#            answer 200 with the same value to 1e-9 relative (and, with
#            return_grad, the same gradient to 1e-9 of its largest entry), or
#            the script stops before measuring anything.
#   wrk      for each variant x connections (1, 8): -t1 for 1 connection, -t2
#            otherwise, --latency, --timeout 10s, BENCH_SECONDS each, lossd
#            then fastapi, with bench/loss/post_body.lua.
# wrk shares the machine's cores with the server it drives, so the numbers
# compare the two servers on the same machine; they are not capacity figures.
#
# Environment:
#   BENCH_SECONDS      seconds per wrk run (default 5)
#   BENCH_WARMUP       seconds of warm-up per server and variant, not reported (default 1; 0: none)
#   BENCH_CONNECTIONS  connection counts (default "1 8")
#   BENCH_VENV         Python venv for FastAPI and NumPy (default .venv-bench, git-ignored)
#   BENCH_BUILD        0: use the existing .build/release/lossd, do not build
#   BENCH_LOSSD        a lossd binary to use instead (nothing is built)
#   LOSSD_GENERIC      1: build lossd for baseline x86-64 (see scripts/build-release.sh)
#   BENCH_OUT          folder for raw wrk output, logs and the table (and, if the
#                      check fails, the body and both answers)
#                      (default bench/results/loss-<UTC time>, git-ignored)
# Prints the table last: variant, conns, lossd req/s, lossd p99, fastapi req/s,
# fastapi p99, ratio (lossd req/s / fastapi req/s).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${BENCH_SECONDS:-5}
warmup=${BENCH_WARMUP:-1}
connections=${BENCH_CONNECTIONS:-"1 8"}
venv=${BENCH_VENV:-.venv-bench}
out=${BENCH_OUT:-bench/results/loss-$(date -u +%Y%m%dT%H%M%SZ)}
variants="false true"  # return_grad
rows=256
classes=1000
seed=20261129

# Pinned versions, verified together on Python 3.11: bench/http/run.sh's pins
# plus NumPy and orjson.
pins=(
  "fastapi==0.165.0"
  "starlette==1.10.0"
  "uvicorn==0.54.0"
  "uvloop==0.23.0"
  "httptools==0.9.0"
  "numpy==2.4.6"
  "orjson==3.13.0"
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
import fastapi, uvicorn, uvloop, httptools, numpy, orjson  # noqa: E401,F401
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

# --- request bodies -----------------------------------------------------------

# body-false.json and body-true.json (in the scratch folder; the seed makes
# them again): the same logits and labels, return_grad false and true. Also
# prints NumPy's own value for them (reference.txt).
"$venv/bin/python" - "$tmp" "$rows" "$classes" "$seed" >"$out/reference.txt" <<'PY' \
  || die "could not write the request bodies"
import json, sys
import numpy as np

out, n, c, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(seed)
x = np.round(rng.normal(0.0, 2.0, size=(n, c)), 4)
labels = rng.integers(0, c, size=n)
logits_json = json.dumps(x.tolist(), separators=(",", ":"))
labels_json = json.dumps(labels.tolist(), separators=(",", ":"))
for grad in ("false", "true"):
    body = ('{"loss":"cross_entropy","reduction":"mean","logits":%s,"labels":%s,"return_grad":%s}'
            % (logits_json, labels_json, grad))
    with open(f"{out}/body-{grad}.json", "w") as f:
        f.write(body)
# The value straight from the arrays, the formula the FastAPI app uses.
m = x.max(1, keepdims=True)
lse = m[:, 0] + np.log(np.exp(x - m).sum(1))
print(repr(float((lse - x[np.arange(n), labels]).mean())))
PY
reference=$(cat "$out/reference.txt")
body_bytes=$(wc -c <"$tmp/body-false.json")
log "request bodies: $body_bytes bytes (return_grad false), $(wc -c <"$tmp/body-true.json") bytes (true); ${rows}x${classes} logits, seed $seed"

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

"$venv/bin/python" bench/loss/fastapi_loss_app.py >"$tmp/fastapi.stdout" 2>"$out/fastapi.stderr.log" &
fastapi_pid=$!
fastapi_port=$(wait_for_port "$fastapi_pid" "$tmp/fastapi.stdout") \
  || { tail -n 20 "$out/fastapi.stderr.log" >&2; die "fastapi did not start"; }

log "lossd on :$lossd_port (pid $lossd_pid), fastapi on :$fastapi_port (pid $fastapi_pid)"

# --- correctness check --------------------------------------------------------

# Both must answer 200 with the same value (1e-9 relative) before anything is
# measured; with return_grad, the same [N][C] gradient too.
for grad in $variants; do
  for server in lossd fastapi; do
    port_var=${server}_port
    status=$(curl -s -o "$tmp/answer-$server-$grad.json" -w '%{http_code}' \
      -H 'Content-Type: application/json' --data-binary "@$tmp/body-$grad.json" \
      "http://127.0.0.1:${!port_var}/v1/loss") || status=000
    [ "$status" = 200 ] \
      || die "FAIL: $server POST /v1/loss (return_grad $grad) answered $status: $(head -c 400 "$tmp/answer-$server-$grad.json" 2>/dev/null)"
  done
  if ! "$venv/bin/python" - "$tmp/answer-lossd-$grad.json" "$tmp/answer-fastapi-$grad.json" \
    "$grad" "$rows" "$classes" "$reference" <<'PY' >&2; then
import json, sys
import numpy as np

lossd_file, fastapi_file, grad, n, c, reference = sys.argv[1:7]
n, c, reference = int(n), int(c), float(reference)
answers = {}
for name, path in (("lossd", lossd_file), ("fastapi", fastapi_file)):
    with open(path) as f:
        answers[name] = json.load(f)
ok = True
for name, a in answers.items():
    for key, want in (("loss", "cross_entropy"), ("reduction", "mean"), ("n", n)):
        if a.get(key) != want:
            print(f"bench: FAIL {name}: {key} is {a.get(key)!r}, expected {want!r}")
            ok = False
lv, fv = answers["lossd"]["value"], answers["fastapi"]["value"]
rel = abs(lv - fv) / max(abs(lv), abs(fv))
print(f"bench: return_grad {grad}: lossd value {lv!r}, fastapi value {fv!r}, "
      f"relative difference {rel:.3g} (NumPy on the generated arrays: {reference!r})")
if not rel <= 1e-9:
    print("bench: FAIL values differ by more than 1e-9 relative")
    ok = False
if grad == "true":
    grads = {}
    for name, a in answers.items():
        g = np.asarray(a.get("grad", {}).get("logits"), dtype=np.float64)
        if g.shape != (n, c):
            print(f"bench: FAIL {name}: grad.logits has shape {g.shape}, expected {(n, c)}")
            ok = False
        grads[name] = g
    if ok:
        scale = max(np.abs(grads["lossd"]).max(), np.abs(grads["fastapi"]).max())
        diff = np.abs(grads["lossd"] - grads["fastapi"]).max()
        print(f"bench: return_grad true: gradients differ by at most {diff:.3g} (largest entry {scale:.3g})")
        if not diff <= 1e-9 * scale:
            print("bench: FAIL gradients differ by more than 1e-9 of the largest entry")
            ok = False
else:
    for name, a in answers.items():
        if "grad" in a:
            print(f"bench: FAIL {name} answered a gradient with return_grad false")
            ok = False
sys.exit(0 if ok else 1)
PY
    cp "$tmp/body-$grad.json" "$tmp/answer-lossd-$grad.json" "$tmp/answer-fastapi-$grad.json" "$out/"
    die "FAIL: lossd and fastapi disagree (return_grad $grad); body and answers in $out"
  fi
done

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(nproc) cores, $(uname -sr)"
  echo "lossd: $(curl -s "http://127.0.0.1:$lossd_port/v1/version") ($lossd_bin), default settings, stderr to lossd.stderr.log"
  echo "fastapi: $("$venv/bin/python" -c 'import sys, fastapi, uvicorn, uvloop, numpy, orjson; print(f"fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__}, uvloop {uvloop.__version__}, numpy {numpy.__version__}, orjson {orjson.__version__}, python {sys.version.split()[0]}")')"
  echo "fastapi server: uvicorn, 1 worker, uvloop + httptools, --log-level warning, access log off; JSON: orjson"
  echo "wrk: $(wrk -v 2>&1 | head -n 1)"
  echo "request: POST /v1/loss cross_entropy mean, ${rows}x${classes} float64 logits (nested arrays), $body_bytes bytes"
  echo "value: $(cat "$out/reference.txt") (NumPy on the generated arrays)"
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

# wrk's Requests/sec, with two decimals when it is under 100.
to_rps() {
  awk '/^Requests\/sec:/ { if ($2 < 100) printf "%.2f", $2; else printf "%.0f", $2 }' "$1"
}

notes=()
declare -A rps p99

for grad in $variants; do
  export BENCH_BODY="$tmp/body-$grad.json"
  if [ "$warmup" != 0 ]; then
    for server in lossd fastapi; do
      port_var=${server}_port
      wrk -t 1 -c 2 -d "${warmup}s" --timeout 10s -s bench/loss/post_body.lua \
        "http://127.0.0.1:${!port_var}/v1/loss" >/dev/null
    done
  fi
  for conns in $connections; do
    threads=2
    [ "$conns" -gt 1 ] || threads=1
    for server in lossd fastapi; do
      port_var=${server}_port
      file="$out/wrk-$server-grad_$grad-c$conns.txt"
      log "wrk -t$threads -c$conns -d${seconds}s $server return_grad=$grad"
      wrk -t "$threads" -c "$conns" -d "${seconds}s" --timeout 10s --latency \
        -s bench/loss/post_body.lua "http://127.0.0.1:${!port_var}/v1/loss" >"$file" 2>&1 \
        || die "wrk failed: $(cat "$file")"
      key="$grad $conns $server"
      rps[$key]=$(to_rps "$file")
      p99[$key]=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$file")")
      [ -n "${rps[$key]}" ] || die "no Requests/sec in $file"
      errors=$(grep -E '^ *(Socket errors|Non-2xx or 3xx responses):' "$file" | sed 's/^ *//' | paste -sd ';' -) || true
      [ -z "$errors" ] || notes+=("$server return_grad=$grad c=$conns: $errors")
    done
  done
done
unset BENCH_BODY

stop_servers
trap - EXIT

if [ -s "$out/lossd.stderr.log" ]; then
  lines=$(wc -l <"$out/lossd.stderr.log")
  gzip -1 -f "$out/lossd.stderr.log"
  log "lossd stderr: $lines lines, in $out/lossd.stderr.log.gz"
fi

# --- table ------------------------------------------------------------------

{
  echo "POST /v1/loss, cross_entropy mean, ${rows}x${classes} logits as nested JSON arrays ($body_bytes bytes)"
  echo "lossd: default settings (stderr to a file); fastapi: uvicorn 1 worker, --log-level warning, no access log, orjson + NumPy"
  printf '%-17s %5s %12s %12s %13s %13s %7s\n' \
    variant conns "lossd req/s" "lossd p99" "fastapi req/s" "fastapi p99" ratio
  for grad in $variants; do
    for conns in $connections; do
      l="$grad $conns lossd"
      f="$grad $conns fastapi"
      ratio=$(awk -v a="${rps[$l]}" -v b="${rps[$f]}" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
      printf '%-17s %5s %12s %12s %13s %13s %7s\n' "return_grad=$grad" "$conns" \
        "${rps[$l]}" "${p99[$l]} ms" "${rps[$f]}" "${p99[$f]} ms" "$ratio"
    done
  done
  for note in "${notes[@]+"${notes[@]}"}"; do
    echo "note: $note"
  done
} >"$out/table.txt"

log "raw wrk output, logs and table in $out"
cat "$out/table.txt"
