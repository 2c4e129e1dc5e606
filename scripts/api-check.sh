#!/usr/bin/env bash
# Spec-driven test of the whole API: schemathesis generates requests for every operation
# in openapi.yaml and sends them to a real lossd that runs with an API key, with every
# check schemathesis has (`--checks all`): no 5xx; status codes, content types, headers
# and bodies as the document says; every schema-valid request accepted and every
# schema-violating one refused; routes refuse requests without the key; unknown methods
# get 405 with `Allow`; stored calibrators behave as resources (stateful phase).
#
#   scripts/api-check.sh [MAX_EXAMPLES]    (default 60 per operation and phase)
#
# The configuration, with every exception to a check's defaults and its reason, is
# scripts/schemathesis/config.toml; scripts/schemathesis/hooks.py keeps positive test
# cases consistent where JSON Schema cannot (tensor sizes that agree, labels below C, ...).
# Before schemathesis, scripts/schemathesis/catalogue_check.py compares the document's
# loss schemas with the server's catalogue (GET /v1/losses).
#
# Uses the lint virtual environment (scripts/lint.sh installs schemathesis there) and the
# debug binary that `swift build` leaves in .build (or $LOSSD_BINARY). The run takes about
# two minutes on two cores (some 19,500 generated cases at the default 60).
set -uo pipefail
cd "$(dirname "$0")/.."
venv=${LINT_VENV:-.venv-tools}
examples=${1:-60}
binary=${LOSSD_BINARY:-$(swift build --show-bin-path 2>/dev/null)/lossd}
[ -x "$binary" ] || { echo "api-check: no lossd binary at $binary (run swift build)" >&2; exit 2; }
[ -x "$venv/bin/schemathesis" ] || bash scripts/lint.sh >/dev/null 2>&1
[ -x "$venv/bin/schemathesis" ] || { echo "api-check: schemathesis is not installed in $venv" >&2; exit 2; }

# One key for lossd (--api-key's variable), schemathesis (config.toml) and the hooks.
LOSSD_API_KEY=${LOSSD_API_KEY:-api-check-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')}
export LOSSD_API_KEY

work=$(mktemp -d)
out="$work/lossd.out"
"$binary" --port 0 --data-dir "$work/data" --log-level warning >"$out" 2>"$work/lossd.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -nE 's/.*listening on http:\/\/127\.0\.0\.1:([0-9]+).*/\1/p' "$out" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "api-check: lossd did not start" >&2; cat "$work/lossd.err" >&2; exit 2; }

# The document's loss names, request schemas and parameters must be the server's catalogue.
"$venv/bin/python" scripts/schemathesis/catalogue_check.py "http://127.0.0.1:$port" || exit 1

"$venv/bin/schemathesis" --config-file scripts/schemathesis/config.toml run openapi.yaml \
  --url "http://127.0.0.1:$port" --checks all \
  --max-examples "$examples" --workers 1 --seed 20261129 \
  >"$work/report.txt" 2>&1
status=$?
sed -n '/^=* SUMMARY =*$/,$p' "$work/report.txt"
if [ "$status" -ne 0 ]; then
  echo "api-check: schemathesis found problems; full report:" >&2
  sed -n '1,300p' "$work/report.txt" >&2
fi
kill -0 "$pid" 2>/dev/null || { echo "api-check: lossd died during the run" >&2; status=1; }
exit "$status"
