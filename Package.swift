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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // No I/O: ids, clock, models, changes, merge, policy tables, wire encoding.
        .target(name: "TandemCore", swiftSettings: swiftSettings),
        // The system zlib (zlib1g-dev), for raw deflate of batches.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "TandemCompression", dependencies: ["CZlib"], swiftSettings: swiftSettings),
        // Deterministic, seeded journals and notes: demo data, benchmarks and property tests.
        .target(name: "TandemWorkload", dependencies: ["TandemCore"], swiftSettings: swiftSettings),
        .target(
            name: "TandemCLI",
            dependencies: [
                "TandemCore", "TandemCompression", "TandemWorkload",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "tandem", dependencies: ["TandemCLI"], swiftSettings: swiftSettings),
        .target(
            name: "TandemTestSupport",
            dependencies: ["TandemCore", "TandemWorkload"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TandemCoreTests",
            dependencies: ["TandemCore", "TandemCompression", "TandemWorkload", "TandemTestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
