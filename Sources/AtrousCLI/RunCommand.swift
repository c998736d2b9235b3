import ArgumentParser
import AtrousCore
import AtrousFeatures
import AtrousIO
import AtrousNN
import AtrousONNX

struct RunCommand: ParsableCommand, MemoryBudgeted, RunsModels {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Run an ONNX model and write its outputs as .npy files.",
    discussion: """
      Inputs are NAME=FILE pairs. A .npy file is fed as it is (ONNX layout,
      e.g. NCHW). An image (PNG or JPEG) is preprocessed: optional resize
      (bilinear, half-pixel, as cv2.resize), values * --scale, then
      (v - mean) / std per channel, then reordered to (1, C, H, W).
      Presets: default (gray, 0-1), mnist (gray 28x28, raw 0-255) and ppocr
      (BGR, sides rounded to multiples of 32, (v/255 - 0.5) / 0.5); a
      built-in model uses its own unless --preset says otherwise.

      Each graph output (or each name given to --outputs, which may be any
      intermediate value) is written to DIR/<name>.npy; characters other
      than letters, digits, '.', '_' and '-' in the name become '_'.

      EXAMPLES
        atrous run model.onnx --input x=input.npy -o outputs/
        atrous run model.onnx --input x=photo.png --size 224x224 -o out/
        atrous run mnist --input Input3=photo.png -o digits/ --profile
      """
  )

  @Argument(help: "An ONNX model file, or a built-in model: default, mnist or ppocr (see 'atrous models').")
  var model: String

  @Option(name: .customLong("input"), help: ArgumentHelp("A graph input: NAME=FILE.npy or NAME=IMAGE (repeatable).", valueName: "name=file"))
  var inputs: [String] = []

  @Option(name: [.short, .customLong("output-dir")], help: "Folder for the output .npy files (made if missing; its parent must exist).")
  var outputDir: String

  @Option(help: ArgumentHelp("Values to write instead of the graph outputs, comma-separated.", valueName: "a,b"))
  var outputs: String?

  @OptionGroup var preprocessing: ImagePreprocessingOptions

  @OptionGroup var memoryBudget: MemoryOptions

  @Flag(help: "Print 'timing: <stage> <milliseconds>' lines to standard error: read (the model and inputs), first-run (the first forward pass, which prepares the weights), model (the later passes' mean: --repeat of them), write.")
  var timings = false

  @Option(name: .customLong("repeat"), parsing: .unconditional, help: "Time the forward pass over this many runs after one warm-up (with --timings or --profile).")
  var repeats = 1

  @Flag(help: ArgumentHelp(
    "Print each node's time to standard error, slowest first: 'profile: <milliseconds> <op> <node> <output shape> <path>', then 'profile: total <milliseconds>'.",
    discussion: "The path is the kernel that ran (a convolution's strategy) and what was fused into it; times are medians over --repeat runs after one warm-up."))
  var profile = false

  @Option(parsing: .unconditional, help: "Threads for the model (default: every core).")
  var threads: Int?

  func validate() throws {
    guard !inputs.isEmpty else { throw ValidationError("give at least one --input NAME=FILE") }
    for input in inputs where !input.contains("=") { throw ValidationError("--input \(input): expected NAME=FILE") }
    try OutputFolder.check(outputDir, option: "-o")
    guard repeats >= 1 else { throw ValidationError("--repeat must be at least 1, not \(repeats)") }
    if repeats > 1 && !timings && !profile { throw ValidationError("--repeat has no effect without --timings or --profile") }
    var named: Set<Substring> = []
    for input in inputs {
      let name = input.split(separator: "=", maxSplits: 1)[0]
      guard named.insert(name).inserted else { throw ValidationError("--input \(name) is given twice") }
    }
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    try preprocessing.check()
  }

  func run() throws {
    let times = StageTimes()
    var current = model
    do {
      let loaded = try timed("read", in: times) { try ModelCatalog.load(model, threads: threads ?? Parallel.coreCount) }
      let graph = loaded.graph
      try preprocessing.check(against: loaded)
      let preparation = preprocessing.resolved(for: loaded)
      let executor = try Executor(graph: graph, threads: threads ?? Parallel.coreCount)
      var feeds: [String: NDArray] = [:]
      try timed("read", in: times) {
        for item in inputs {
          let name = String(item[..<item.firstIndex(of: "=")!]), file = String(item[item.index(after: item.firstIndex(of: "=")!)...])
          current = file
          guard executor.inputNames.contains(name) else {
            throw NNError.badGraphInput(name: name, reason: "the model's inputs are \(executor.inputNames.joined(separator: ", "))")
          }
          feeds[name] = try ImagePreprocessingOptions.load(file, preparation, for: graph.inputs.first { $0.name == name })
        }
      }
      current = model
      let wanted = outputs.map { $0.split(separator: ",").map(String.init) } ?? graph.outputs
      var results = try timed("first-run", in: times) { try executor.run(feeds, outputs: wanted) }
      if profile {
        let runs = try (0..<repeats).map { _ in try executor.profiledRun(feeds, outputs: wanted).nodes }
        Self.printProfile(runs)
      }
      if repeats > 1 || timings {
        let clock = ContinuousClock()
        var total = Duration.zero
        for _ in 0..<repeats {
          let start = clock.now
          results = try executor.run(feeds, outputs: wanted)
          total += clock.now - start
        }
        times.record("model", total.milliseconds / Double(repeats))
      }
      try timed("write", in: times) {
        current = outputDir
        try FileIO.makeFolder(outputDir)
        try OutputGroup.all {
          for name in wanted {
            current = name
            let path = OutputFolder.join(outputDir, Self.fileName(for: name))
            try FileIO.ensure(output: path, isNotOneOf: [model] + inputs.map { String($0.split(separator: "=", maxSplits: 1)[1]) })
            try NPY.write(NPYArray(results[name]!), to: path)
          }
        }
      }
    } catch let usage as ValidationError {
      throw usage
    } catch {
      Reporting.fail(error, file: current)
      throw ExitCode.fileFailed
    }
    if timings { times.print() }
  }

  /// One line per node, slowest first, each time the median over `runs`.
  static func printProfile(_ runs: [[Executor.NodeTiming]]) {
    guard let first = runs.first else { return }
    let rows = first.indices.map { k -> (Double, Executor.NodeTiming) in
      let times = runs.map { $0[k].milliseconds }.sorted()
      return (times[times.count / 2], first[k])
    }
    for (ms, node) in rows.sorted(by: { $0.0 > $1.0 }) {
      let shape = node.outputShape.map(String.init).joined(separator: "x")
      Reporting.printError("profile: \(Self.format(ms)) \(node.op) \(node.name) \(shape.isEmpty ? "scalar" : shape) \(node.path)")
    }
    Reporting.printError("profile: total \(Self.format(rows.reduce(0) { $0 + $1.0 }))")
  }

  static func format(_ ms: Double) -> String {
    String(printf: "%.3f", ms)
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
