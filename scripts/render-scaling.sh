#!/usr/bin/env bash
# Renders lossd's scaling-law plots (POST /v1/scaling/fit and /v1/scaling/predict with
# Accept: image/svg+xml) to PNG with headless Chromium, for eyeballing the SVGs.
#
#   scripts/render-scaling.sh [OUT_DIR]     # default: ${TMPDIR:-/tmp}/lossd-scaling
#
# Starts the lossd binary ($LOSSD_BINARY, else .build/debug/lossd, else .build/release/lossd,
# building a debug one if neither exists) on a free port, posts five deterministic
# synthetic requests (a power_law fit with a bootstrap band, a chinchilla fit, an nmt fit,
# an lr_annealing fit on a cosine and a constant run, and the lr_annealing prediction of a
# warm-up-stable-decay schedule) and writes OUT_DIR/scaling-NAME.{json,svg,png}.
# docs/images/scaling-*.{svg,png} are its output. Needs python3, curl and chromium
# (installed with apt-get when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/render-lib.sh
render_prepare scaling "${1:-}"

# Synthetic runs from known laws with 0.5-1% multiplicative noise.
python3 - "$out" <<'PY'
import json, math, random, sys
out = sys.argv[1]
rng = random.Random(20240916)
noise = lambda s: math.exp(rng.gauss(0, s))
def dump(name, body):
    json.dump(body, open(f"{out}/scaling-{name}.json", "w"))

xs = [10 ** (6 + 0.5 * i) for i in range(9)]
dump("power-law", {"law": "power_law", "bootstrap": {"samples": 200, "seed": 7},
     "data": [{"x": x, "loss": round((1.69 + (8.8e6 / x) ** 0.34) * noise(0.01), 5)} for x in xs]})

pts = []
for n in [4e7, 1.6e8, 6.4e8, 2.56e9]:
    for d in [2e9, 8e9, 3.2e10, 1.28e11]:
        pts.append({"n": n, "d": d, "loss": round((1.69 + 406.4 / n ** 0.34 + 410.7 / d ** 0.28) * noise(0.005), 5)})
dump("chinchilla", {"law": "chinchilla", "data": pts})

pts = []
for e in [5e7, 1e8, 2e8, 4e8, 8e8]:
    for d in [5e7, 2e8, 8e8]:
        pts.append({"n_encoder": e, "n_decoder": d,
                    "loss": round((0.9 * (2e8 / e) ** 0.25 * (2e8 / d) ** 0.35 + 1.3) * noise(0.008), 5)})
dump("nmt", {"law": "nmt", "data": pts})

def areas(lr, w, lam=0.999):
    s1 = s2 = m = 0.0
    prev = lr[w] if w < len(lr) else 0
    out = []
    for i in range(w, len(lr)):
        m = lam * m + (prev - lr[i]); prev = lr[i]
        s1 += lr[i]; s2 += m
        out.append((s1, s2))
    return out
S, W, peak = 3000, 100, 3e-4
warm = [peak * (i + 1) / W for i in range(W)]
cosine = warm + [0.1 * peak + 0.9 * peak * 0.5 * (1 + math.cos(math.pi * i / (S - W))) for i in range(S - W)]
constant = warm + [peak] * (S - W)
law = lambda s1, s2: 2.0 + 0.3 * s1 ** -0.45 - 0.8 * s2
curves = []
for lr in (cosine, constant):
    loss = [0.0] * W + [round(law(a, b) * noise(0.006), 5) for a, b in areas(lr, W)]
    curves.append({"lr": [round(v, 10) for v in lr], "loss": loss})
dump("lr-annealing-fit", {"law": "lr_annealing", "params": {"warmup_steps": W}, "data": curves})

decay = 600
wsd = warm + [peak] * (S - W - decay) + [peak * (1 - (i + 1) / decay) + 0.01 * peak * (i + 1) / decay for i in range(decay)]
dump("lr-annealing-wsd", {"law": "lr_annealing",
     "params": {"L0": 2.0, "A": 0.3, "alpha": 0.45, "C": 0.8, "decay": 0.999, "warmup_steps": W},
     "curve": {"lr": [round(v, 10) for v in wsd]}})
PY

render_start_lossd "$out"

for name in power-law chinchilla nmt lr-annealing-fit lr-annealing-wsd; do
    endpoint=fit
    [[ "$name" == lr-annealing-wsd ]] && endpoint=predict
    curl -sS --retry 5 --retry-connrefused --fail-with-body -H 'Content-Type: application/json' -H 'Accept: image/svg+xml' \
        --data-binary @"$out/scaling-$name.json" -o "$out/scaling-$name.svg" "http://127.0.0.1:$port/v1/scaling/$endpoint"
    size="$(sed -n 's/.*<svg [^>]*width="\([0-9]*\)" height="\([0-9]*\)".*/\1,\2/p' "$out/scaling-$name.svg" | head -n1)"
    render_png "$out/scaling-$name.svg" "$out/scaling-$name.png" "$size"
    echo "wrote $out/scaling-$name.svg and .png ($size)"
done
