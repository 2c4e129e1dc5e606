#!/usr/bin/env bash
# End-to-end benchmark of POST /v1/loss: lossd against a FastAPI + NumPy app
# (uvicorn), both on loopback, driven by wrk: a small body (64x10 logits, 32
# connections) and a ~2 MB one (256x1000, 8 connections).
#
#   bench/loss/run.sh
#   BENCH_SECONDS=3 bench/loss/run.sh
#
# The request: cross_entropy, reduction mean, logits N x C float64 drawn
# from N(0, 2) with a fixed seed and rounded to 4 decimals (at most 6
# significant digits), as nested JSON arrays, and N labels. Two variants, one
# body file each: return_grad false (the answer is one number) and return_grad
# true (the answer also holds the N x C gradient: about 5 MB of JSON at 256x1000).
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
#   wrk      for each size, variant and connection count: -t1 for 1 connection, -t2
#            otherwise, --latency, --timeout 10s, BENCH_SECONDS each, lossd
#            then fastapi, with bench/loss/post_body.lua.
# wrk shares the machine's cores with the server it drives, so the numbers
# compare the two servers on the same machine; they are not capacity figures.
#
# Environment:
#   BENCH_SECONDS      seconds per wrk run (default 5)
#   BENCH_WARMUP       seconds of warm-up per server and variant, not reported (default 1; 0: none)
#   BENCH_SIZES        "ROWSxCLASSES:CONNECTIONS ..." (default "64x10:32 256x1000:8"; a
#                      size without ":CONNECTIONS" runs at 1 and 8)
#   BENCH_CONNECTIONS  connection counts for every size, e.g. "1 8" (default: each size's own)
#   BENCH_VENV         Python venv for FastAPI and NumPy (default .venv-bench, git-ignored)
#   BENCH_BUILD        0: use the existing .build/release/lossd, do not build
#   BENCH_LOSSD        a lossd binary to use instead (nothing is built)
#   BENCH_OUT          folder for raw wrk output, logs and the table (and, if the
#                      check fails, the body and both answers)
#                      (default bench/results/loss-<UTC time>, git-ignored)
# Prints the table last: variant, conns, lossd req/s, lossd p99, fastapi req/s,
# fastapi p99, ratio (lossd req/s / fastapi req/s).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# One run per size (rows x classes : connections), each with its own servers, folder and
# table; the binary is built once, by the first.
if [ -z "${BENCH_ROWS:-}" ]; then
  base_out=${BENCH_OUT:-bench/results/loss-$(date -u +%Y%m%dT%H%M%SZ)}
  build=${BENCH_BUILD:-1}
  sizes=${BENCH_SIZES:-"64x10:32 256x1000:8"}
  for size in $sizes; do
    shape=${size%%:*}
    size_connections=${size#*:}
    [[ $size == *:* ]] || size_connections="1 8"
    BENCH_ROWS=${shape%x*} BENCH_CLASSES=${shape#*x} BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-$size_connections} \
      BENCH_OUT="$base_out/$shape" BENCH_BUILD=$build bash "${BASH_SOURCE[0]}" || exit 1
    build=0
  done
  exit 0
fi

seconds=${BENCH_SECONDS:-5}
warmup=${BENCH_WARMUP:-1}
connections=${BENCH_CONNECTIONS:-"1 8"}
venv=${BENCH_VENV:-.venv-bench}
out=${BENCH_OUT:-bench/results/loss-$(date -u +%Y%m%dT%H%M%SZ)}
variants="false true"  # return_grad
rows=$BENCH_ROWS
classes=${BENCH_CLASSES:-1000}
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

# Python modules that must import in $venv.
modules=(fastapi uvicorn uvloop httptools numpy orjson)

# shellcheck source=bench/lib.sh
source bench/lib.sh

bench_init

# --- tools ------------------------------------------------------------------

bench_check_system
bench_locate_lossd
bench_setup_venv

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

bench_start_servers bench/loss/fastapi_loss_app.py

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
      p99[$key]=$(wrk_p99_ms "$file")
      [ -n "${rps[$key]}" ] || die "no Requests/sec in $file"
      errors=$(wrk_errors "$file") || true
      [ -z "$errors" ] || notes+=("$server return_grad=$grad c=$conns: $errors")
    done
  done
done
unset BENCH_BODY

bench_finish_servers

# --- table ------------------------------------------------------------------

{
  echo "POST /v1/loss, cross_entropy mean, ${rows}x${classes} logits as nested JSON arrays ($body_bytes bytes)"
  echo "lossd: default settings (stderr to a file); fastapi: uvicorn 1 worker, --log-level warning, no access log, orjson + NumPy"
  bench_pair_header 17 variant
  for grad in $variants; do
    for conns in $connections; do
      bench_pair_row 17 "return_grad=$grad" "$conns" "$grad"
    done
  done
  bench_print_notes
} >"$out/table.txt"

bench_show_table
