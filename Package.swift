// swift-tools-version:6.0
// lossd: a loss-evaluation and calibration service.
//
// Targets, one job each:
//   LossdKernels  pure numerics on contiguous buffers, backed by OpenBLAS (CBLAS)
//   LossdHTTP     our HTTP/1.1 server: bytes -> requests -> responses, no domain knowledge
//   LossdJSON     strict JSON reader that packs numeric arrays into contiguous buffers
//   LossdStore    the durable document store (calibrators, scaling laws): SQLite or PostgreSQL
//   LossdService  routing, decoding, validation, problem+json errors, the endpoints
//   lossd         the executable: configuration and start-up
import PackageDescription

let package = Package(
    name: "lossd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "lossd", targets: ["lossd"]),
        .library(name: "LossdKernels", targets: ["LossdKernels"]),
        .library(name: "LossdHTTP", targets: ["LossdHTTP"]),
        .library(name: "LossdStore", targets: ["LossdStore"]),
        .library(name: "LossdService", targets: ["LossdService"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // The embedded document store (LossdStore): the system SQLite through its C API.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // The shared document store for several replicas (LossdStore, `--store
        // postgres://...`): PostgreSQL's C client library.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // gzip request bodies and responses (LossdService/Decoding/Gzip.swift).
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "CLossdSystem",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        // Server-side TLS for LossdHTTP: a small C shim over OpenSSL's libssl (libssl-dev),
        // whose API is mostly macros Swift cannot call.
        .target(
            name: "CLossdTLS",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),
        // Two-Pass softmax row kernels in C vector types, for fused multiply-adds (see its
        // header); used only by LossdKernels.
        .target(name: "CLossdKernels"),
        .target(
            name: "LossdKernels",
            dependencies: ["CBLAS", "CLossdKernels"]
        ),
        // LossdJSON's number-scanning inner loop and Eisel-Lemire, in C (see its header).
        .target(name: "CLossdJSON"),
        .target(name: "LossdJSON", dependencies: ["CLossdJSON"]),
        .target(
            name: "LossdHTTP",
            dependencies: [
                "CLossdSystem",
                "CLossdTLS",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "LossdStore",
            dependencies: ["CSQLite", "CLibPQ", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "LossdService",
            dependencies: [
                "LossdHTTP",
                "LossdJSON",
                "LossdKernels",
                "LossdStore",
                "CZlib",
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.embedInCode("Resources/openapi.yaml")]
        ),
        .executableTarget(
            name: "lossd",
            dependencies: [
                "CLossdSystem",
                "LossdService",
                "LossdStore",
                "LossdHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Prints kernel and JSON-reader figures for `make bench`.
        .executableTarget(name: "lossd-bench", dependencies: ["LossdKernels", "LossdJSON", "LossdService", "LossdHTTP"]),
        // libFuzzer targets for `make fuzz` (scripts/fuzz.sh); a plain build only prints usage.
        .executableTarget(name: "lossd-fuzz", dependencies: ["LossdHTTP", "LossdJSON", "LossdService"]),
        .testTarget(name: "LossdKernelsTests", dependencies: ["LossdKernels"], exclude: ["Fixtures"]),
        .testTarget(name: "LossdJSONTests", dependencies: ["LossdJSON"]),
        // Test helpers shared by the test targets: a raw-socket HTTP client.
        .target(name: "LossdTestSupport", path: "Tests/LossdTestSupport"),
        .testTarget(
            name: "LossdHTTPTests",
            dependencies: ["LossdHTTP", "LossdTestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "LossdServiceTests",
            dependencies: ["LossdService", "LossdStore", "LossdHTTP", "LossdJSON"],
            resources: [.copy("Vectors")]
        ),
        // The executable's settings: flags, environment, defaults.
        .testTarget(name: "lossdTests", dependencies: ["lossd"]),
        .testTarget(
            name: "LossdIntegrationTests",
            dependencies: ["lossd", "LossdTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
