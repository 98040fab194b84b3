// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "swift-attention",
    // MARK: products
    products: [
        .library(name: "Attention", targets: ["Attention"]),
        .executable(name: "attention", targets: ["AttentionTool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: library targets
        .target(name: "Attention"),
        .target(
            name: "AttentionCLI",
            dependencies: [
                "Attention",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "AttentionTool", dependencies: ["AttentionCLI"]),

        // MARK: test targets
        .target(name: "AttentionTestSupport", dependencies: ["Attention"], path: "Tests/Support"),
        .testTarget(name: "AttentionTests", dependencies: ["Attention", "AttentionTestSupport"]),
        .testTarget(name: "AttentionCLITests", dependencies: ["AttentionCLI", "Attention", "AttentionTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
