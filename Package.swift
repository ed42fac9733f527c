// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Tandem",
    products: [
        .executable(name: "tandem", targets: ["tandem"]),
        .library(name: "TandemCore", targets: ["TandemCore"]),
        .library(name: "TandemStore", targets: ["TandemStore"]),
        .library(name: "TandemWorkload", targets: ["TandemWorkload"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // No I/O: ids, clock, models, changes, merge, policy tables, wire encoding.
        .target(name: "TandemCore", swiftSettings: swiftSettings),
        // The system zlib (zlib1g-dev), for raw deflate of batches.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "TandemCompression", dependencies: ["CZlib"], swiftSettings: swiftSettings),
        // Child processes by posix_spawn (PostgreSQL's tools, the benchmarks' and tests'
        // servers), not Foundation's Process: see Subprocess.swift.
        .target(name: "CSpawn"),
        .target(name: "TandemProcess", dependencies: ["CSpawn"], swiftSettings: swiftSettings),
        // SQLite's C API under GRDB's cached statements, for the hot paths of both stores.
        .target(
            name: "TandemSQLite",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        // A device's replica: one SQLite file through GRDB.
        .target(
            name: "TandemStore",
            dependencies: [
                "TandemCore", "TandemProtocol", "TandemSQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The wire contract in code (Protocol/): request and answer bodies, cursors, the
        // binary pull answer, live messages. What devices and the server share, nothing more.
        .target(
            name: "TandemProtocol", dependencies: ["TandemCore", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: swiftSettings),
        // The center's sync server: Hummingbird over a ServerStorage (SQLite embedded).
        .target(
            name: "TandemServer",
            dependencies: [
                "TandemCore", "TandemCompression", "TandemProtocol", "TandemSQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The device's sync driver: HTTP transport over AsyncHTTPClient.
        .target(
            name: "TandemClient",
            dependencies: [
                "TandemCore", "TandemCompression", "TandemStore", "TandemProtocol",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        // Deterministic, seeded journals and notes: demo data, benchmarks and property tests.
        .target(name: "TandemWorkload", dependencies: ["TandemCore"], swiftSettings: swiftSettings),
        .target(
            name: "TandemCLI",
            dependencies: [
                "TandemCore", "TandemCompression", "TandemStore", "TandemWorkload", "TandemProtocol", "TandemServer",
                "TandemServerPostgres", "TandemClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "tandem", dependencies: ["TandemCLI"], swiftSettings: swiftSettings),
        // Release-build benchmarks: `swift run -c release tandem-bench --help` (docs/benchmarks.md).
        .executableTarget(
            name: "tandem-bench",
            dependencies: [
                "TandemCore", "TandemStore", "TandemWorkload", "TandemCompression", "TandemProtocol", "TandemServer",
                "TandemServerPostgres", "TandemClient", "TandemCLI", "TandemProcess",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/TandemBenchmarks",
            swiftSettings: swiftSettings
        ),
        // Tests only: a SQLite VFS that simulates a power cut (the power-loss test).
        .target(name: "CPowerCut", linkerSettings: [.linkedLibrary("sqlite3")]),
        .target(
            name: "TandemTestSupport",
            dependencies: ["TandemCore", "TandemWorkload", "TandemProcess"],
            swiftSettings: swiftSettings
        ),
        // The PostgreSQL store (issue 15): SQL and connection handling only; the one module
        // that imports PostgresNIO.
        .target(
            name: "TandemServerPostgres",
            dependencies: [
                "TandemCore", "TandemServer", "TandemProcess",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TandemServerPostgresTests",
            dependencies: ["TandemServerPostgres", "TandemServer", "TandemTestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "TandemProcessTests", dependencies: ["TandemProcess"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TandemCoreTests",
            dependencies: ["TandemCore", "TandemCompression", "TandemWorkload", "TandemTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TandemStoreTests",
            dependencies: [
                "TandemCore", "TandemStore", "TandemWorkload", "TandemTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TandemCLITests",
            dependencies: [
                "tandem", "TandemCLI", "TandemClient", "TandemCore", "TandemStore", "TandemTestSupport", "TandemProcess",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            exclude: ["Snapshots"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TandemServerTests",
            dependencies: [
                "tandem", "TandemCore", "TandemCompression", "TandemStore", "TandemProtocol", "TandemServer", "TandemServerPostgres",
                "TandemClient",
                "TandemTestSupport", "TandemProcess",
                "TandemWorkload", "CPowerCut",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
