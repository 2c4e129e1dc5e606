# lossd container image: two stages.
#
#   docker build -t lossd:dev .
#   docker run --rm -p 8080:8080 -v lossd-data:/data lossd:dev
#
# Build stage: the official Swift image on Debian 12, the same toolchain as
# the development machines (Swift 6.3.1). The Swift runtime is linked
# statically (--static-swift-stdlib), so the runtime stage needs no Swift
# libraries, only the system ones (OpenBLAS, libstdc++) that
# scripts/install-deps.sh --runtime installs.
FROM swift:6.3.1-bookworm AS build

WORKDIR /src

# System libraries (OpenBLAS, OpenSSL, zlib, SQLite, pkg-config).
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh

# Dependencies first, so that a change to Sources/ does not fetch them again.
# Package.resolved is git-ignored; the glob copies it when it is present.
COPY Package.* ./
RUN swift package resolve

# Everything else (.dockerignore keeps build folders, data and .git out).
# Tests/ is needed too: SwiftPM checks every target in the manifest.
COPY . .

# scripts/build-release.sh is `make build`: one binary for every CPU of the
# architecture; the row kernels' instruction set (SSE2, AVX2, AVX-512 on x86-64)
# is chosen at start-up and reported by /v1/version.
RUN bash scripts/build-release.sh --static-swift-stdlib \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/lossd" /out/lossd

# Runtime stage: Debian 12 slim plus the runtime libraries and curl (for the
# HEALTHCHECK and for exec probes in Kubernetes).
FROM debian:bookworm-slim

COPY scripts/install-deps.sh /usr/local/share/lossd/install-deps.sh
RUN bash /usr/local/share/lossd/install-deps.sh --runtime \
    && rm -rf /var/lib/apt/lists/*

# A fixed, numeric uid/gid, so that Kubernetes' runAsNonRoot can check it and
# volumes can be prepared for it (fsGroup 10001).
RUN groupadd --gid 10001 lossd \
    && useradd --no-log-init --uid 10001 --gid lossd \
       --home-dir /data --no-create-home --shell /usr/sbin/nologin lossd \
    && mkdir -p /data \
    && chown lossd:lossd /data \
    && chmod 0750 /data

COPY --from=build /out/lossd /usr/local/bin/lossd

ENV LOSSD_HOST=0.0.0.0 \
    LOSSD_PORT=8080 \
    LOSSD_DATA_DIR=/data

# The store lives here; declared after the chown so the ownership sticks.
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8080

# lossd listens on every interface (LOSSD_HOST=0.0.0.0), loopback included.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD ["sh", "-c", "curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:${LOSSD_PORT:-8080}/healthz || exit 1"]

# lossd is PID 1 and handles SIGTERM itself: it stops accepting, drains
# in-flight requests for up to 10 s (--shutdown-grace) and exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/lossd"]
