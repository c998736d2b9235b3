// swift-tools-version:6.1
import PackageDescription

let package = Package(
  name: "Atrous",
  platforms: [.macOS(.v13)],
  products: [
    .library(name: "Atrous", targets: ["Atrous"]),
    .executable(name: "atrous", targets: ["AtrousCLI"]),
    // The entry points of the fuzzing harnesses (Fuzz/), one per input kind.
    .library(name: "AtrousFuzzing", targets: ["AtrousFuzzing"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    // Without its default traits: the delimited-stream API would link all of
    // Foundation (and ICU), which costs every run of the tool about 5 ms at start.
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0", traits: []),
  ],
  targets: [
    // System libraries: found through pkg-config, installed from the distribution.
    .systemLibrary(
      name: "CPNG",
      pkgConfig: "libpng",
      providers: [.apt(["libpng-dev"]), .brew(["libpng"])]
    ),
    .systemLibrary(
      name: "CJPEG",
      pkgConfig: "libjpeg",
      providers: [.apt(["libjpeg-dev"]), .brew(["jpeg-turbo"])]
    ),
    .systemLibrary(
      name: "CZlib",
      pkgConfig: "zlib",
      providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
    ),
    // The only C code: every setjmp/longjmp of the codecs lives here.
    .target(
      name: "_CImageCodecs",
      dependencies: ["CPNG", "CJPEG", "CZlib"],
      exclude: ["README.md"]
    ),
    // Vectorized float32 row loops, multiversioned per instruction set.
    .target(name: "_CKernels", exclude: ["README.md", "kernels"]),
    .target(name: "AtrousCore", dependencies: ["_CKernels"]),
    .target(name: "AtrousIO", dependencies: ["AtrousCore", "_CImageCodecs", "_CKernels"]),
    .target(name: "AtrousFilters", dependencies: ["AtrousCore", "_CKernels"]),
    .target(name: "AtrousNN", dependencies: ["AtrousCore", "AtrousIO", "_CKernels"]),
    // Generated from onnx.proto by Scripts/generate-onnx-swift.sh (committed).
    .target(
      name: "AtrousONNX",
      dependencies: ["AtrousNN", "AtrousIO", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
      exclude: ["Proto"]
    ),
    // The bundled trained models, compiled into the binary.
    .target(name: "_CModels", exclude: ["Models"]),
    // Feature maps and hypercolumns.
    .target(name: "AtrousFeatures", dependencies: ["AtrousCore", "AtrousIO", "AtrousNN", "AtrousONNX", "_CKernels", "_CModels"]),
    // Sharded, resumable batch runs: input lists, shards, output names, manifests.
    .target(name: "AtrousBatch", dependencies: ["AtrousCore", "AtrousIO"]),
    .target(name: "Atrous", dependencies: ["AtrousCore", "AtrousIO", "AtrousFilters", "AtrousNN", "AtrousONNX", "AtrousFeatures", "AtrousBatch"]),
    .target(name: "AtrousFuzzing", dependencies: ["AtrousCore", "AtrousIO", "AtrousFilters", "AtrousNN", "AtrousONNX", "AtrousFeatures"]),
    .executableTarget(
      name: "AtrousCLI",
      dependencies: [
        "Atrous",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      // The Swift runtime and libraries linked in: a run then maps one
      // binary instead of a dozen shared libraries and binds no symbols
      // across them, 3 ms less at every start (`atrous --version` 4.1 to
      // 4.7 ms instead of 7.4, AMD EPYC). Release builds only, and no test
      // target depends on this one (the CLI tests run the built binary):
      // a test bundle links its dependencies' flags, and the test
      // libraries need the shared runtime.
      linkerSettings: [
        .unsafeFlags(["-static-stdlib"], .when(platforms: [.linux], configuration: .release)),
        // What the static FoundationEssentials needs besides, which its
        // shared library would have brought along.
        .linkedLibrary("_FoundationCollections", .when(platforms: [.linux], configuration: .release)),
        .linkedLibrary("_FoundationCShims", .when(platforms: [.linux], configuration: .release)),
      ]
    ),
    // In-process timings for the comparison scripts in Benchmarks/.
    .executableTarget(name: "atrous-bench", dependencies: ["AtrousIO", "AtrousFilters", "AtrousNN", "AtrousONNX", "AtrousFeatures"], path: "Benchmarks/AtrousBench"),
    .testTarget(name: "AtrousCoreTests", dependencies: ["AtrousCore", "AtrousTestSupport"]),
    .testTarget(name: "AtrousIOTests", dependencies: ["AtrousIO", "AtrousTestSupport"]),
    .testTarget(name: "AtrousFiltersTests", dependencies: ["AtrousFilters", "AtrousIO", "AtrousTestSupport"]),
    .testTarget(name: "AtrousNNTests", dependencies: ["AtrousNN", "AtrousONNX", "AtrousIO", "AtrousTestSupport"]),
    .testTarget(name: "AtrousFeaturesTests", dependencies: ["AtrousFeatures", "AtrousONNX", "AtrousIO", "AtrousTestSupport"]),
    .testTarget(name: "AtrousBatchTests", dependencies: ["AtrousBatch", "AtrousCore", "AtrousIO", "AtrousTestSupport"]),
    .testTarget(name: "AtrousFuzzingTests", dependencies: ["AtrousFuzzing", "AtrousIO", "AtrousTestSupport"]),
    // Runs the `atrous` binary that `swift test` builds with the package;
    // not a dependency (see AtrousCLI's linker settings).
    .testTarget(name: "AtrousCLITests", dependencies: ["AtrousCore", "AtrousIO", "AtrousTestSupport"]),
    .target(name: "AtrousTestSupport", dependencies: ["AtrousCore", "AtrousIO", "AtrousNN"], path: "Tests/AtrousTestSupport"),
  ],
  swiftLanguageModes: [.v6]
)
