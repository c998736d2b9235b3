import ArgumentParser
import AtrousCore
import AtrousIO
import AtrousNN
import AtrousONNX
import Foundation

struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Run an ONNX model and write its outputs as .npy files.",
    discussion: """
      Inputs are NAME=FILE pairs. A .npy file is fed as it is (ONNX layout,
      e.g. NCHW). An image (PNG or JPEG) is preprocessed: optional resize
      (bilinear, half-pixel, as cv2.resize), values * --scale, then
      (v - mean) / std per channel, then reordered to (1, C, H, W).
      Presets: mnist (gray 28x28, raw 0-255) and ppocr (BGR, sides rounded
      to multiples of 32, (v/255 - 0.5) / 0.5).

      Each graph output (or each name given to --outputs, which may be any
      intermediate value) is written to DIR/<name>.npy; characters other
      than letters, digits, '.', '_' and '-' in the name become '_'.
      """
  )

  @Argument(help: "The ONNX model file.")
  var model: String

  @Option(name: .customLong("input"), help: ArgumentHelp("A graph input: NAME=FILE.npy or NAME=IMAGE (repeatable).", valueName: "name=file"))
  var inputs: [String] = []

  @Option(name: [.short, .customLong("output-dir")], help: "Folder for the output .npy files.")
  var outputDir: String

  @Option(help: ArgumentHelp("Values to write instead of the graph outputs, comma-separated.", valueName: "a,b"))
  var outputs: String?

  @OptionGroup var preprocessing: ImagePreprocessingOptions

  @Flag(help: "Print 'timing: <stage> <milliseconds>' lines (read, model, write) to standard error.")
  var timings = false

  @Option(name: .customLong("repeat"), help: "Time the forward pass over this many runs after one warm-up (with --timings).")
  var repeats = 1

  @Option(help: "Threads for the model (default: every core).")
  var threads: Int?

  func validate() throws {
    guard !inputs.isEmpty else { throw ValidationError("give at least one --input NAME=FILE") }
    for input in inputs where !input.contains("=") { throw ValidationError("--input \(input): expected NAME=FILE") }
    guard repeats >= 1 else { throw ValidationError("--repeat must be at least 1") }
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    try preprocessing.check()
  }

  func run() throws {
    let batch = Batch(total: 1)
    var current = model
    do {
      guard FileIO.isDirectory(outputDir) else {
        throw FileError.cannotWrite(path: outputDir, reason: "not a folder")
      }
      let graph = try timed("read", in: batch) { try ONNXModel.load(model) }
      let executor = try Executor(graph: graph, threads: threads ?? Parallel.coreCount)
      var feeds: [String: NDArray] = [:]
      try timed("read", in: batch) {
        for item in inputs {
          let name = String(item[..<item.firstIndex(of: "=")!]), file = String(item[item.index(after: item.firstIndex(of: "=")!)...])
          current = file
          guard executor.inputNames.contains(name) else {
            throw NNError.badGraphInput(name: name, reason: "the model's inputs are \(executor.inputNames.joined(separator: ", "))")
          }
          feeds[name] = try preprocessing.load(file)
        }
      }
      current = model
      let wanted = outputs.map { $0.split(separator: ",").map(String.init) } ?? graph.outputs
      var results = try executor.run(feeds, outputs: wanted)
      if repeats > 1 || timings {
        let clock = ContinuousClock()
        var total = Duration.zero
        for _ in 0..<repeats {
          let start = clock.now
          results = try executor.run(feeds, outputs: wanted)
          total += clock.now - start
        }
        batch.record("model", milliseconds(total) / Double(repeats))
      }
      try timed("write", in: batch) {
        for name in wanted {
          current = name
          let path = outputDir + "/" + Self.fileName(for: name)
          try FileIO.ensure(output: path, isNotOneOf: [model] + inputs.map { String($0.split(separator: "=", maxSplits: 1)[1]) })
          try NPY.write(NPYArray(results[name]!), to: path)
        }
      }
    } catch {
      Reporting.fail(error, file: current)
      throw ExitCode.fileFailed
    }
    if timings { batch.printTimings() }
  }

  /// `<name>.npy` with characters outside [A-Za-z0-9._-] replaced by '_'.
  static func fileName(for name: String) -> String {
    let safe = name.unicodeScalars.map { scalar -> Character in
      let c = Character(scalar)
      return c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-") ? c : "_"
    }
    return String(safe) + ".npy"
  }
}

/// How an image becomes a network input.
struct ImagePreprocessingOptions: ParsableArguments {
  @Option(help: "Preset for a bundled model: mnist or ppocr (sets the options below).")
  var preset: String?

  @Option(help: ArgumentHelp("Resize images to HxW before the model (bilinear, as cv2.resize).", valueName: "HxW"))
  var size: String?

  @Option(help: "Multiply 0-255 pixel values by this (default 1/255, giving 0-1).")
  var scale: Float?

  @Option(help: ArgumentHelp("Per-channel mean subtracted after scaling.", valueName: "a,b,c"))
  var mean: String?

  @Option(help: ArgumentHelp("Per-channel divisor applied after the mean.", valueName: "a,b,c"))
  var std: String?

  @Flag(help: "Feed channels in BGR order (OpenCV's).")
  var bgr = false

  @Flag(help: "Feed one gray channel (BT.601 luma).")
  var gray = false

  func check() throws {
    if let preset, !["mnist", "ppocr"].contains(preset) { throw ValidationError("--preset must be mnist or ppocr") }
    if let size, Self.parseSize(size) == nil { throw ValidationError("--size must be HxW with positive sizes, e.g. 224x224") }
    for (name, text) in [("--mean", mean), ("--std", std)] {
      if let text, Self.parseList(text) == nil { throw ValidationError("\(name) must be numbers separated by commas") }
    }
    if let std, let values = Self.parseList(std), values.contains(0) { throw ValidationError("--std must not contain 0") }
  }

  static func parseSize(_ text: String) -> (height: Int, width: Int)? {
    let parts = text.lowercased().split(separator: "x").map { Int($0) }
    guard parts.count == 2, let h = parts[0], let w = parts[1], h > 0, w > 0 else { return nil }
    return (h, w)
  }

  static func parseList(_ text: String) -> [Float]? {
    let values = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
    return values.isEmpty || values.contains(nil) ? nil : values.map { $0! }
  }

  /// A `.npy` as it is, or a preprocessed image as (1, C, H, W).
  func load(_ path: String) throws -> NDArray {
    if try FileIO.readPrefix(path, count: NPY.magicBytes.count) == NPY.magicBytes {
      return NDArray(try NPY.read(path))
    }
    return try tensor(ImageFile.read(path))
  }

  /// The image as a (1, C, H, W) network input.
  func tensor(_ image: Image) throws -> NDArray {
    var gray = self.gray, bgr = self.bgr
    var scale = self.scale ?? 1 / 255
    var mean = self.mean.flatMap(Self.parseList), std = self.std.flatMap(Self.parseList)
    var size = self.size.flatMap(Self.parseSize)
    switch preset {
    case "mnist":
      gray = true
      scale = self.scale ?? 1
      size = size ?? (28, 28)
    case "ppocr":
      bgr = true
      mean = mean ?? [0.5, 0.5, 0.5]
      std = std ?? [0.5, 0.5, 0.5]
      if size == nil {
        // The detector takes any size whose sides are multiples of 32.
        func round32(_ n: Int) -> Int { max(32, Int((Double(n) / 32).rounded()) * 32) }
        size = (round32(image.height), round32(image.width))
      }
    default: break
    }
    var hwc = Tensor(image.format.hasAlpha ? image.droppingAlpha() : image, scale: .byte, order: bgr ? .bgr : .rgb, gray: gray)
    if let size, size != (hwc.height, hwc.width) { hwc = BilinearResize.resize(hwc, height: size.0, width: size.1) }
    let channels = hwc.channels
    for (name, values) in [("--mean", mean), ("--std", std)] {
      if let values, values.count != channels && values.count != 1 {
        throw NPYError.incompatible(reason: "\(name) has \(values.count) values for \(channels) channels")
      }
    }
    hwc.withUnsafeMutableBufferPointer { v in
      for i in 0..<v.count {
        let c = i % channels
        var x = v[i] * scale
        if let mean { x -= mean.count == 1 ? mean[0] : mean[c] }
        if let std { x /= std.count == 1 ? std[0] : std[c] }
        v[i] = x
      }
    }
    return NDArray(channelsLast: hwc.reshaped([1] + hwc.shape)).standard()
  }
}
