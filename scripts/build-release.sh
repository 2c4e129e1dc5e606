#!/usr/bin/env bash
# Release build of lossd: one binary for every CPU of the architecture. The C row kernels
# are compiled for each instruction-set level (x86-64: SSE2, AVX2+FMA, AVX-512) and the best
# the CPU supports is chosen at start-up (LOSSD_SIMD=sse2|avx2|avx512 picks a lower one);
# `lossd`'s /v1/version reports the choice. Extra arguments go to `swift build`.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product "${LOSSD_PRODUCT:-lossd}" "$@"
