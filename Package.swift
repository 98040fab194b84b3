// swift-tools-version: 6.2
import PackageDescription

// The kernels are Swift, written once in _AttentionKernels as always-inlined functions. The
// _AttentionKernelsAVX512 and _AttentionKernelsAVX2 modules inline them under AVX-512 and AVX2 + FMA
// code generation; the library picks one at run time from a CPU check (see
// Sources/Attention/Kernels/KernelTable.swift). Every kernel module is optimized even in debug
// builds: unoptimized SIMD code is a hundred times slower. The manifest is evaluated on the build
// machine, so its architecture is the target's in native builds.
#if arch(x86_64)
let avx512Flags = ["-target-cpu", "skylake-avx512"]
// Cascade Lake is Skylake-AVX512 with VNNI: Intel from 2019, AMD from Zen 4.
let avx512VNNIFlags = ["-target-cpu", "cascadelake"]
let avx2Flags = ["-target-cpu", "haswell"]
#else
let avx512Flags: [String] = []
let avx512VNNIFlags: [String] = []
let avx2Flags: [String] = []
#endif
let optimized = ["-O"]

let package = Package(
    name: "swift-attention",
    // MARK: products
    products: [
        .library(name: "Attention", targets: ["Attention"]),
        .library(name: "AttentionModels", targets: ["AttentionModels"]),
        // Ring attention across MPI processes; MPI is loaded at run time, so nothing needs it to build.
        .library(name: "AttentionDistributed", targets: ["AttentionDistributed"]),
        .executable(name: "attention", targets: ["AttentionTool"]),
        // Fuzz targets for the parsers and input paths; scripts/fuzz.sh builds it with libFuzzer.
        .executable(name: "attention-fuzz", targets: ["AttentionFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // Already in Hummingbird's graph; the server tests stop their server with its graceful shutdown.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        // `attention serve`'s /metrics page, in Prometheus's text format.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // `swift package generate-documentation` (scripts/docs.sh): a command plugin, linked into nothing.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // MARK: library targets
        .target(
            name: "Attention",
            dependencies: ["_AttentionKernels", "_AttentionKernelsAVX512", "_AttentionKernelsAVX512VNNI", "_AttentionKernelsAVX2", "_CPUFeatures",
                           "_WorkerPool"]),
        .target(name: "_AttentionKernels", dependencies: ["_KernelIntrinsics"], swiftSettings: [.unsafeFlags(optimized)]),
        // Header-only C the kernels inline: prefetch, lane sums, fast exp, quantized dot products.
        .target(name: "_KernelIntrinsics"),
        .target(name: "_WorkerPool"),
        .target(
            name: "_AttentionKernelsAVX512", dependencies: ["_AttentionKernels"],
            swiftSettings: [.unsafeFlags(optimized + avx512Flags)]),
        // Only the block-quantized products, for their integer instructions.
        .target(
            name: "_AttentionKernelsAVX512VNNI", dependencies: ["_AttentionKernels"],
            swiftSettings: [.unsafeFlags(optimized + avx512VNNIFlags)]),
        .target(
            name: "_AttentionKernelsAVX2", dependencies: ["_AttentionKernels"],
            swiftSettings: [.unsafeFlags(optimized + avx2Flags)]),
        .target(name: "_CPUFeatures"),
        .target(name: "_AllocatorTuning"),
        .target(name: "AttentionRendering", dependencies: ["Attention"]),
        .target(name: "AttentionExperiments", dependencies: ["Attention"]),
        .target(name: "AttentionModels", dependencies: ["Attention", "_AttentionKernels"]),
        .target(name: "AttentionDistributed", dependencies: ["Attention", "_MPIShim"]),
        .target(name: "_MPIShim", linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        // The explorer's answers (page, status, attend, explain) apart from HTTP: what the fuzz target
        // and most tests call, with no server framework to build.
        .target(name: "AttentionExplorer", dependencies: ["Attention", "AttentionModels"]),
        // OpenAI's completion API over batched generation, apart from HTTP (like the explorer's answers).
        .target(name: "AttentionServing", dependencies: ["Attention", "AttentionModels", .product(name: "Prometheus", package: "swift-prometheus")]),
        .target(
            name: "AttentionServer",
            dependencies: ["AttentionExplorer", "AttentionModels", "AttentionServing", .product(name: "Hummingbird", package: "hummingbird")],
            // The explorer page (index.html, explorer.css, explorer.js) and the chat explorer (chat.html, chat.js), served as they are.
            resources: [.copy("Resources")]),
        .target(
            name: "AttentionCLI",
            dependencies: [
                "Attention",
                "AttentionDistributed",
                "_AllocatorTuning",
                "AttentionExperiments",
                "AttentionModels",
                "AttentionRendering",
                "AttentionExplorer",
                "AttentionServer",
                "AttentionServing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "AttentionTool",
            dependencies: ["AttentionCLI"]),
        .target(name: "_FuzzDriver"),
        .executableTarget(
            name: "AttentionFuzz",
            dependencies: ["_FuzzDriver", "Attention", "AttentionModels", "AttentionRendering", "AttentionExplorer", "AttentionServing"]),

        // MARK: test targets
        .target(name: "AttentionTestSupport", dependencies: ["Attention"], path: "Tests/Support"),
        .testTarget(name: "AttentionTests", dependencies: ["Attention", "_AttentionKernels", "AttentionTestSupport"]),
        .testTarget(name: "AttentionCLITests", dependencies: ["AttentionCLI", "Attention", "AttentionModels", "AttentionRendering", "AttentionTestSupport"]),
        .testTarget(name: "AttentionModelsTests", dependencies: ["AttentionModels", "Attention", "AttentionTestSupport"]),
        .testTarget(name: "AttentionRenderingTests", dependencies: ["AttentionRendering"]),
        .testTarget(name: "AttentionDistributedTests", dependencies: ["AttentionDistributed", "Attention", "AttentionTestSupport"]),
        .testTarget(name: "AttentionExperimentsTests", dependencies: ["AttentionExperiments", "AttentionRendering", "Attention", "AttentionTestSupport"]),
        .testTarget(name: "AttentionExplorerTests", dependencies: ["AttentionExplorer", "AttentionModels", "AttentionTestSupport"]),
        // A real server on a free port, driven by a real browser; no HTTP client library (Foundation's).
        .testTarget(
            name: "AttentionServerTests",
            dependencies: ["AttentionServer", "AttentionServing", "AttentionExplorer", "AttentionModels", "AttentionTestSupport", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
    ],
    swiftLanguageModes: [.v6]
)
