#!/usr/bin/env bash
# Renders lossd's annotator picture (POST /v1/aggregate, Accept: image/svg+xml) to PNG with
# headless Chromium, for eyeballing the SVG.
#
#   scripts/render-aggregate.sh [OUT_DIR]     # default: ${TMPDIR:-/tmp}/lossd-aggregate
#
# Simulates a crowd (300 items, 4 classes, 14 annotators: skilled ones, a spammer who
# answers at random, one who swaps classes 1 and 2, one biased towards class 0), posts it
# with dawid_skene (fitted confusion matrices) and with majority_vote (matrices estimated
# against the soft labels), and writes OUT_DIR/{dawid_skene,majority_vote}.{svg,png} and
# the JSON answers. Needs python3, curl and chromium (apt-get installs it as root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/render-lib.sh
render_prepare aggregate "${1:-}"

python3 - "$out/annotations.json" <<'PY'
import json, random, sys
rng = random.Random(20261206)
K, items = 4, 300
skilled = {f"ann-{i:02d}": acc for i, acc in enumerate([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5])}
def answer(kind, truth):
    if kind == "spammer":
        return rng.randrange(K)
    if kind == "swapper":
        return {1: 2, 2: 1}.get(truth, truth) if rng.random() < 0.9 else rng.randrange(K)
    if kind == "biased":
        return 0 if rng.random() < 0.5 else (truth if rng.random() < 0.8 else rng.randrange(K))
    return truth if rng.random() < kind else rng.choice([c for c in range(K) if c != truth])
crowd = dict(skilled, spammer="spammer", swapper="swapper", **{"biased-0": "biased"}, expert=0.98)
annotations = []
for item in range(items):
    truth = rng.choices(range(K), weights=[0.4, 0.25, 0.2, 0.15])[0]
    for name in rng.sample(sorted(crowd), 6):
        annotations.append([item, name, answer(crowd[name], truth)])
json.dump({"num_classes": K, "annotations": annotations}, open(sys.argv[1], "w"))
PY

render_start_lossd "$out"
for method in dawid_skene majority_vote; do
    python3 - "$out/annotations.json" "$out/$method-request.json" "$method" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r["method"] = sys.argv[3]
json.dump(r, open(sys.argv[2], "w"))
PY
    url="http://127.0.0.1:$port/v1/aggregate"
    curl -sS --fail-with-body -H 'Content-Type: application/json' -H 'Accept: image/svg+xml' \
        --data-binary @"$out/$method-request.json" -o "$out/$method.svg" "$url"
    curl -sS --fail-with-body -H 'Content-Type: application/json' \
        --data-binary @"$out/$method-request.json" -o "$out/$method.json" "$url"
    height="$(sed -n 's/.*<svg[^>]* height="\([0-9]*\)".*/\1/p' "$out/$method.svg" | head -n1)"
    render_png "$out/$method.svg" "$out/$method.png" "960,${height:-700}"
done
echo "wrote $out/{dawid_skene,majority_vote}.{svg,png}"
