#!/usr/bin/env bash
# The Python client's tests (clients/python/tests) against the real lossd binary: a fresh
# virtual environment gets `pip install ./clients/python` (NumPy and urllib3) plus pytest
# and pandas, then pytest runs with LOSSD_BINARY (default: the debug build).
#
#   scripts/client-test.sh            # reuses .venv-client when it has the client installed
#   CLIENT_VENV_FRESH=1 scripts/client-test.sh   # rebuilds the venv from nothing
set -uo pipefail
cd "$(dirname "$0")/.."
venv=${CLIENT_VENV:-.venv-client}
binary=${LOSSD_BINARY:-$(swift build --show-bin-path 2>/dev/null)/lossd}
[ -x "$binary" ] || { echo "client-test: no lossd binary at $binary (run swift build)" >&2; exit 2; }
if [ "${CLIENT_VENV_FRESH:-0}" = 1 ]; then rm -rf "$venv"; fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || { echo "client-test: cannot create $venv (apt-get install python3-venv)" >&2; exit 2; }
fi
# Always reinstall the client itself (its source may have changed); the rest is cached.
"$venv/bin/pip" install -q --disable-pip-version-check "pytest>=7" "pandas>=1.3" >/dev/null 2>&1 \
  || { echo "client-test: pip could not install pytest/pandas" >&2; exit 2; }
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps ./clients/python >/dev/null 2>&1 \
  && "$venv/bin/pip" install -q --disable-pip-version-check ./clients/python >/dev/null 2>&1 \
  || { echo "client-test: pip install ./clients/python failed" >&2; exit 2; }
LOSSD_BINARY=$binary "$venv/bin/python" -m pytest -q -p no:cacheprovider clients/python/tests
