#!/usr/bin/env bash
# Renders lossd's reliability diagrams to PNG with headless Chromium, for eyeballing the SVG:
# POST /v1/reliability (Accept: image/svg+xml) for an over-confident and an under-confident
# model, and POST /v1/calibrators/{name}/reliability (before and after a temperature fitted
# on the same data).
#
#   scripts/render-reliability.sh [OUT_DIR]     # default: ${TMPDIR:-/tmp}/lossd-reliability
#
# Starts the lossd binary ($LOSSD_BINARY, else .build/debug/lossd, else .build/release/lossd,
# building a debug one if neither exists) on a free port, posts 600 deterministic
# synthetic samples (10 classes, an over-confident model), and writes OUT_DIR/request.json,
# reliability.svg, reliability.json and reliability.png; underconfident.{svg,png} (the same
# logits scaled by 0.3, with a title); calibrator.{svg,png,json} (a temperature fitted on the
# over-confident data, stored as `render-demo`, before and after). Needs python3, curl and chromium
# (installed with apt-get when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/render-lib.sh
render_prepare reliability "${1:-}"

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

render_png "$out/reliability.svg" "$out/reliability.png" "900,700"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("ECE %.4f  MCE %.4f  accuracy %.3f  N %d" % (d["ece"], d["mce"], d["accuracy"], d["n"]))' "$out/reliability.json"

# The same model made under-confident (logits × 0.3), titled.
python3 - "$out/request.json" "$out/underconfident.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["logits"] = [[round(0.3 * v, 6) for v in row] for row in r["logits"]]
r["title"] = "An under-confident model (logits × 0.3)"
json.dump(r, open(sys.argv[2], "w"))
PY
curl -sS --fail-with-body -H 'Content-Type: application/json' -H 'Accept: image/svg+xml' \
    --data-binary @"$out/underconfident.json" -o "$out/underconfident.svg" "$url"

# A temperature fitted on the over-confident data, then the diagram before and after.
python3 - "$out/request.json" "$out/fit.json" "$out/calibrator-request.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
json.dump({"method": "temperature", "name": "render-demo", "logits": r["logits"], "labels": r["labels"]}, open(sys.argv[2], "w"))
json.dump({"logits": r["logits"], "labels": r["labels"], "params": {"bins": 10}}, open(sys.argv[3], "w"))
PY
curl -sS --fail-with-body -H 'Content-Type: application/json' --data-binary @"$out/fit.json" -o /dev/null \
    "http://127.0.0.1:$port/v1/calibrators/fit"
curl -sS --fail-with-body -H 'Content-Type: application/json' -H 'Accept: image/svg+xml' \
    --data-binary @"$out/calibrator-request.json" -o "$out/calibrator.svg" "http://127.0.0.1:$port/v1/calibrators/render-demo/reliability"
curl -sS --fail-with-body -H 'Content-Type: application/json' \
    --data-binary @"$out/calibrator-request.json" -o "$out/calibrator.json" "http://127.0.0.1:$port/v1/calibrators/render-demo/reliability"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("temperature: ECE %.4f -> %.4f  NLL %.4f -> %.4f" % (d["before"]["ece"], d["after"]["ece"], d["before"]["nll"], d["after"]["nll"]))' "$out/calibrator.json"

for name in underconfident calibrator; do
    render_png "$out/$name.svg" "$out/$name.png" "900,700"
done
echo "wrote $out/{reliability,underconfident,calibrator}.{svg,png}"
