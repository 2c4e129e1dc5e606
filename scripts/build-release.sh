#!/usr/bin/env bash
# Release build of lossd. On x86-64 it targets AVX2 (Haswell, 2013, and later) unless
# LOSSD_GENERIC=1, which builds for baseline x86-64. `lossd`'s /v1/version reports which.
set -euo pipefail
cd "$(dirname "$0")/.."
flags=()
if [ "$(uname -m)" = "x86_64" ] && [ "${LOSSD_GENERIC:-0}" != "1" ]; then
  flags=(-Xswiftc -target-cpu -Xswiftc haswell -Xswiftc -DLOSSD_AVX2 -Xcc -mavx2 -Xcc -mfma)
fi
swift build -c release --product "${LOSSD_PRODUCT:-lossd}" "${flags[@]+"${flags[@]}"}" "$@"
