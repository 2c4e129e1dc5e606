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

source scripts/render-lib.sh
render_locate_lossd
render_locate_chromium

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

render_start_lossd "$out"

url="http://127.0.0.1:$port/v1/reliability"
curl -sS --fail-with-body -H 'Content-Type: application/json' -H 'Accept: image/svg+xml' \
    --data-binary @"$out/request.json" -o "$out/reliability.svg" "$url"
curl -sS --fail-with-body -H 'Content-Type: application/json' \
    --data-binary @"$out/request.json" -o "$out/reliability.json" "$url"

"$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$out/reliability.png" \
    --window-size=900,700 "file://$out/reliability.svg" >/dev/null 2>&1
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("ECE %.4f  MCE %.4f  accuracy %.3f  N %d" % (d["ece"], d["mce"], d["accuracy"], d["n"]))' "$out/reliability.json"
echo "wrote $out/reliability.svg and $out/reliability.png"
