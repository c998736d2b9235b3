// swift-tools-version:6.0
import PackageDescription

// libFuzzer harnesses, one executable per input kind; see README.md.
// Built and run by Fuzz/run, which instruments the Atrous package too.
let harnesses = ["PNG", "JPEG", "NPY", "ONNX", "FilterSpec", "PixelList"]

let package = Package(
  name: "AtrousFuzz",
  platforms: [.macOS(.v13)],
  dependencies: [.package(name: "Atrous", path: "..")],
  targets: harnesses.map { name in
    .executableTarget(name: "Fuzz\(name)", dependencies: [.product(name: "AtrousFuzzing", package: "Atrous")])
  },
  swiftLanguageModes: [.v6]
)
