#!/usr/bin/env bash
# Renders lossd's reliability diagram (POST /v1/reliability, Accept: image/svg+xml) to a PNG
# with headless Chromium, for eyeballing the SVG.
#
#   scripts/render-reliability.sh [OUT_DIR]     # default: ${TMPDIR:-/tmp}/lossd-reliability
#
# Starts the lossd binary ($LOSSD_BINARY, else .build/debug/lossd, else .build/release/lossd,
# building a debug one if neither exists) on a free port, posts 600 deterministic
# synthetic samples (10 classes, an over-confident model), and writes OUT_DIR/request.json,
# reliability.svg, reliability.json and reliability.png. Needs python3, curl and chromium
# (installed with apt-get when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${TMPDIR:-/tmp}/lossd-reliability}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

binary="${LOSSD_BINARY:-}"
if [[ -z "$binary" ]]; then
    for candidate in .build/debug/lossd .build/release/lossd; do
        if [[ -x "$candidate" ]]; then binary="$candidate"; break; fi
    done
fi
if [[ -z "$binary" ]]; then
    swift build --product lossd >&2
    binary=.build/debug/lossd
fi

chrome="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [[ -z "$chrome" ]]; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        apt-get install -y chromium >&2 || { apt-get update >&2 && apt-get install -y chromium >&2; }
        chrome="$(command -v chromium)"
    else
        echo "chromium not found; install it (apt-get install -y chromium)" >&2
        exit 1
    fi
fi

# Synthetic over-confident classifier: logits scaled up so confidences exceed accuracy.
python3 - "$out/request.json" <<'PY'
import json, math, random, sys
rng = random.Random(20240601)
C, N = 10, 600
logits, labels = [], []
for _ in range(N):
    y = rng.randrange(C)
    row = [rng.gauss(0, 1) for _ in range(C)]
    row[y] += rng.gauss(1.4, 1.2)
    logits.append([round(3.0 * v, 6) for v in row])
    labels.append(y)
json.dump({"logits": logits, "labels": labels, "metrics": ["ece", "mce", "accuracy", "nll"],
           "params": {"bins": 15}}, open(sys.argv[1], "w"))
PY

data_dir="$(mktemp -d)"
log="$out/lossd.log"
"$binary" --port 0 --data-dir "$data_dir" --log-level warning >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data_dir"; }
trap cleanup EXIT

port=""
for _ in $(seq 1 200); do
    port="$(sed -n 's/.*listening on .*:\([0-9][0-9]*\).*/\1/p' "$log" | head -n1)"
    [[ -n "$port" ]] && break
    sleep 0.05
done
if [[ -z "$port" ]]; then
    echo "lossd did not start:" >&2
    cat "$log" >&2
    exit 1
fi

url="http://127.0.0.1:$port/v1/reliability"
curl -sS --fail-with-body -H 'Content-Type: application/json' -H 'Accept: image/svg+xml' \
    --data-binary @"$out/request.json" -o "$out/reliability.svg" "$url"
curl -sS --fail-with-body -H 'Content-Type: application/json' \
    --data-binary @"$out/request.json" -o "$out/reliability.json" "$url"

"$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$out/reliability.png" \
    --window-size=900,700 "file://$out/reliability.svg" >/dev/null 2>&1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("ECE %.4f  MCE %.4f  accuracy %.3f  N %d" % (d["ece"], d["mce"], d["accuracy"], d["n"]))' "$out/reliability.json"
echo "wrote $out/reliability.svg and $out/reliability.png"
