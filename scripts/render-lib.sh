#!/usr/bin/env bash
# Shared by the scripts that render lossd's SVG answers to PNG with headless Chromium
# (scripts/render-{reliability,scaling,selection,aggregate}.sh). Source it from the
# repository root after `set -euo pipefail`:
#
#   render_prepare NAME [OUT_DIR]
#                            sets $out (OUT_DIR, default ${TMPDIR:-/tmp}/lossd-NAME, made and
#                            absolute), $binary and $chrome (the two below)
#   render_png SVG PNG SIZE  screenshots the SVG file to PNG at SIZE ("900,700")
#   render_locate_lossd      sets $binary: $LOSSD_BINARY, else .build/debug/lossd, else
#                            .build/release/lossd, else a debug build made now
#   render_locate_chromium   sets $chrome: chromium (apt-get install as root when missing)
#   render_start_lossd DIR   starts $binary on a free port with a scratch data directory,
#                            logging to DIR/lossd.log (emptied first: a stale log would name
#                            an old port); sets $port and stops lossd on exit

render_prepare() {
    out="${2:-${TMPDIR:-/tmp}/lossd-$1}"
    mkdir -p "$out"
    out="$(cd "$out" && pwd)"
    render_locate_lossd
    render_locate_chromium
}

render_png() {
    "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$2" \
        --window-size="$3" "file://$1" >/dev/null 2>&1
}

render_locate_lossd() {
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
}

render_locate_chromium() {
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
}

render_start_lossd() {
    render_data_dir="$(mktemp -d)"
    local log="$1/lossd.log"
    : >"$log"
    "$binary" --port 0 --data-dir "$render_data_dir" --log-level warning >"$log" 2>&1 &
    render_pid=$!
    trap 'kill "$render_pid" 2>/dev/null || true; wait "$render_pid" 2>/dev/null || true; rm -rf "$render_data_dir"' EXIT
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
}
