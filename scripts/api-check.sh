#!/usr/bin/env bash
# Spec-driven test of the whole API: schemathesis generates requests for every operation
# in openapi.yaml and sends them to a real lossd; no response may be a 5xx, and every
# status code, content type and body must match the document.
#
#   scripts/api-check.sh [MAX_EXAMPLES]    (default 60 per operation and phase)
#
# Uses the lint virtual environment (scripts/lint.sh installs schemathesis there) and the
# debug binary that `swift build` leaves in .build (or $LOSSD_BINARY).
set -uo pipefail
cd "$(dirname "$0")/.."
venv=${LINT_VENV:-.venv-tools}
examples=${1:-60}
binary=${LOSSD_BINARY:-$(swift build --show-bin-path 2>/dev/null)/lossd}
[ -x "$binary" ] || { echo "api-check: no lossd binary at $binary (run swift build)" >&2; exit 2; }
[ -x "$venv/bin/schemathesis" ] || bash scripts/lint.sh >/dev/null 2>&1
[ -x "$venv/bin/schemathesis" ] || { echo "api-check: schemathesis is not installed in $venv" >&2; exit 2; }

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

# The document's loss names must be the server's catalogue, names and aliases.
if ! "$venv/bin/python" - "http://127.0.0.1:$port/v1/losses" <<'PY'
import json, sys, urllib.request
import yaml
served = set()
for entry in json.load(urllib.request.urlopen(sys.argv[1])):
    served.add(entry["name"])
    served.update(entry.get("aliases", []))
documented = set(yaml.safe_load(open("openapi.yaml"))["components"]["schemas"]["LossName"]["enum"])
if served != documented:
    print(f"api-check: openapi.yaml LossName differs from GET /v1/losses: only served {sorted(served - documented)}, "
          f"only documented {sorted(documented - served)}", file=sys.stderr)
    sys.exit(1)
print(f"api-check: the {len(served)} loss names of openapi.yaml match the server's catalogue")
PY
then
  exit 1
fi

"$venv/bin/schemathesis" run openapi.yaml --url "http://127.0.0.1:$port" \
  --max-examples "$examples" --workers 1 --seed 20261129 \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  >"$work/report.txt" 2>&1
status=$?
grep -E "^(API Operations|  Selected|  Tested|Failures|  ❌|Test cases|  [0-9]+ generated)|failure|passed in|=====" "$work/report.txt" | tail -20
if [ "$status" -ne 0 ]; then
  echo "api-check: schemathesis found problems; full report:" >&2
  sed -n '1,200p' "$work/report.txt" >&2
fi
kill -0 "$pid" 2>/dev/null || { echo "api-check: lossd died during the run" >&2; status=1; }
exit "$status"
