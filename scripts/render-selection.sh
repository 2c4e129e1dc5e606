#!/usr/bin/env bash
# Renders lossd's calibrator-selection chart (POST /v1/calibrators/select, Accept:
# image/svg+xml) to a PNG with headless Chromium, for eyeballing the SVG.
#
#   scripts/render-selection.sh [OUT_DIR]     # default: ${TMPDIR:-/tmp}/lossd-selection
#
# Starts the lossd binary ($LOSSD_BINARY, else .build/debug/lossd, else .build/release/lossd,
# building a debug one if neither exists) on a free port, posts the committed digits
# fixture (Tests/LossdKernelsTests/Fixtures/digits_logits.json, both splits: 1079 rows of
# 10 classes from an over-confident logistic regression) with 5 folds and seed 0, and
# writes OUT_DIR/request.json, selection.svg, selection.json and selection.png. Needs
# python3, curl and chromium (installed with apt-get when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/render-lib.sh
render_prepare selection "${1:-}"

python3 - "$out/request.json" <<'PY'
import json, sys
fixture = json.load(open("Tests/LossdKernelsTests/Fixtures/digits_logits.json"))
logits = fixture["fit"]["logits"] + fixture["heldout"]["logits"]
labels = fixture["fit"]["labels"] + fixture["heldout"]["labels"]
json.dump({"logits": logits, "labels": labels, "folds": 5, "seed": 0}, open(sys.argv[1], "w"))
PY

render_start_lossd "$out"

url="http://127.0.0.1:$port/v1/calibrators/select"
curl -sS --fail-with-body -H 'Content-Type: application/json' -H 'Accept: image/svg+xml' \
    --data-binary @"$out/request.json" -o "$out/selection.svg" "$url"
curl -sS --fail-with-body -H 'Content-Type: application/json' \
    --data-binary @"$out/request.json" -o "$out/selection.json" "$url"

# The chart's height grows with the number of methods: size the window from the SVG.
size="$(sed -n 's/.*<svg [^>]*width="\([0-9]*\)" height="\([0-9]*\)".*/\1,\2/p' "$out/selection.svg" | head -n1)"
render_png "$out/selection.svg" "$out/selection.png" "${size:-960,600}"
python3 - "$out/selection.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("%-22s %10s %10s  %s" % ("method", "mean " + d["metric"], "std", "fit failures"))
for r in d["ranking"]:
    fmt = lambda v: "%10.5f" % v if v is not None else "%10s" % "-"
    print("%-22s %s %s  %d" % (r["method"], fmt(r["mean"]), fmt(r["std"]), len(r["fit_failures"])))
u = d["uncalibrated"]
print("%-22s %10.5f %10.5f" % ("uncalibrated", u["mean"], u["std"]))
print("best:", d["best"]["method"], json.dumps(d["best"]["params"])[:120])
PY
echo "wrote $out/selection.svg and $out/selection.png"
