// swift-tools-version:6.0
import PackageDescription
import Foundation

// Kernels are written as SIMD over unsafe pointers; without a CPU target the compiler
// lowers SIMD16<Float> to scalar code and GEMM runs ~100x slower. The default targets the
// build machine; set SCULPT_TARGET_CPU to a CPU name (e.g. x86-64-v3) for a portable build,
// or to "none" to pass no target flag at all.
let targetCPU = ProcessInfo.processInfo.environment["SCULPT_TARGET_CPU"] ?? "native"
let cpuFlags: [String] = (targetCPU.isEmpty || targetCPU == "none") ? [] : ["-target-cpu", targetCPU]

// Compute-heavy targets are optimised in debug builds too, so `swift test` (a debug build)
// runs the numeric tests in seconds rather than minutes.
let computeSettings: [SwiftSetting] = [
    .unsafeFlags(cpuFlags),
    .unsafeFlags(["-O"], .when(configuration: .debug)),
]

let package = Package(
    name: "Sculpt",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "sculpt", targets: ["sculpt"]),
        .library(name: "SculptCore", targets: ["SculptCore"]),
        .library(name: "SculptNN", targets: ["SculptNN"]),
        .library(name: "SculptIO", targets: ["SculptIO"]),
        .library(name: "SculptModels", targets: ["SculptModels"]),
        .library(name: "SculptTune", targets: ["SculptTune"]),
        .library(name: "SculptSubnet", targets: ["SculptSubnet"]),
        .library(name: "SculptMerge", targets: ["SculptMerge"]),
        .library(name: "SculptSearch", targets: ["SculptSearch"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // The evaluation store of the search (needs libsqlite3-dev on Linux).
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
    ],
    targets: [
        .target(name: "SculptCore", swiftSettings: computeSettings),
        .target(name: "SculptNN", dependencies: ["SculptCore"], swiftSettings: computeSettings),
        .target(name: "SculptIO", dependencies: ["SculptCore", .product(name: "Yams", package: "Yams")], swiftSettings: computeSettings),
        .target(name: "SculptModels", dependencies: ["SculptNN", "SculptIO"], swiftSettings: computeSettings),
        // The demo's data ships inside the package so `sculpt demo` works from a fresh clone.
        .target(name: "SculptTune", dependencies: ["SculptModels", .product(name: "Yams", package: "Yams")],
                resources: [.copy("Resources/fashion-mnist")], swiftSettings: computeSettings),
        // SculptSubnet adapts its super-networks to the generic search below it (SculptSearch).
        .target(name: "SculptSubnet", dependencies: ["SculptTune", "SculptSearch"], swiftSettings: computeSettings),
        .target(name: "SculptMerge", dependencies: ["SculptModels", .product(name: "Yams", package: "Yams")],
                swiftSettings: computeSettings),
        // Search machinery (to be folded into SculptSubnet once its super-networks plug in).
        .target(
            name: "SculptSearch",
            dependencies: ["SculptCore", "SculptIO", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: computeSettings
        ),
        .executableTarget(
            name: "sculpt",
            dependencies: [
                "SculptCore", "SculptNN", "SculptIO", "SculptModels", "SculptTune", "SculptSubnet", "SculptMerge", "SculptSearch",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: computeSettings
        ),
        .target(name: "SculptTestSupport", dependencies: ["SculptCore", "SculptModels"], path: "Tests/SculptTestSupport", swiftSettings: computeSettings),
        .testTarget(name: "SculptCoreTests", dependencies: ["SculptCore", "SculptTestSupport"], swiftSettings: computeSettings),
        .testTarget(name: "SculptNNTests", dependencies: ["SculptNN", "SculptIO", "SculptTestSupport"], swiftSettings: computeSettings),
        .testTarget(name: "SculptIOTests", dependencies: ["SculptIO", "SculptTestSupport"], swiftSettings: computeSettings),
        .testTarget(name: "SculptCLITests", dependencies: ["SculptModels", "SculptSearch", "SculptTestSupport"], swiftSettings: computeSettings),
        .testTarget(name: "SculptSubnetTests", dependencies: ["SculptSubnet", "SculptSearch", "SculptTune", "SculptTestSupport"], swiftSettings: computeSettings),
        .testTarget(name: "SculptMergeTests", dependencies: ["SculptMerge", "SculptTestSupport"], swiftSettings: computeSettings),
        .testTarget(name: "SculptSearchTests", dependencies: ["SculptSearch", "SculptIO", "SculptTestSupport"], swiftSettings: computeSettings),
        .testTarget(name: "SculptModelsTests", dependencies: ["SculptModels", "SculptTestSupport"], swiftSettings: computeSettings),
        .testTarget(name: "SculptTuneTests", dependencies: ["SculptTune", "SculptTestSupport"], swiftSettings: computeSettings),
    ]
)
