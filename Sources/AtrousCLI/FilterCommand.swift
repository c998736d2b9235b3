import ArgumentParser
import Atrous

struct FilterCommand: ParsableCommand, MemoryBudgeted {
  static let configuration = CommandConfiguration(
    commandName: "filter",
    abstract: "Filter images with Sobel, Gaussian, Laplacian and other filters, or your own kernels.",
    discussion: """
      Filters run left to right on every channel (alpha is passed through).
      Values keep the input's scale: 0-255 for 8-bit images, 0-65535 for
      16-bit, as stored for .npy. Results equal OpenCV's: correlation, not
      convolution (--convolve flips kernels); border reflect101 by default.

      FILTERS
        sobel:dx | sobel:dy | sobel:mag | sobel:dir   ksize=1|3|5|7, dx=, dy=, scale=
        scharr:dx|dy|mag|dir   prewitt:dx|dy|mag|dir
        gaussian:sigma=S       sigma_y=, ksize= (from sigma as OpenCV when absent)
        box:size=N             width=, height=
        laplacian              ksize=1|3|5|7, scale=
        log:sigma=S            Laplacian of Gaussian (scipy.ndimage.gaussian_laplace)
        dog:sigma=S            sigma2= (default 1.6 sigma): Gaussian(sigma) - Gaussian(sigma2)
        unsharp:sigma=S        amount= (default 1): src + amount * (src - Gaussian)
        'kernel:1,0,-1;2,0,-2;1,0,-1'   rows split by ';' (rank-1 kernels run separably)
        kernel:file=K.npy|K.csv
        'separable:1,2,1;-1,0,1'        row taps; column taps
      Every filter also takes border=constant[:V]|replicate|reflect|reflect101|wrap,
      stride=N|Y:X, dilation=N|Y:X, padding=same|same-lower|valid|N|Y:X|T:B:L:R.

      OUTPUT
        .npy: float32 (H, W, C) with the raw values ((H, W) for an (H, W) input).
        .png (or .jpg): mapped to 8 or 16 bits with --map. The default follows
        the last filter: normalize (smallest value to 0, largest to the maximum)
        after sobel:dir, scharr:dir, prewitt:dir, log and dog, whose values are
        too small to see as they are; abs otherwise, that is |v| rounded and
        saturated like cv2.convertScaleAbs: signed responses such as
        derivatives stay visible, and non-negative ones pass unchanged.

      EXAMPLES
        atrous filter photo.png -o edges.png sobel:mag
        atrous filter photo.png -o dx.npy sobel:dx
        atrous filter photo.png -o out.png gaussian:sigma=1.5 sobel:mag
        atrous filter scans/ --out-dir edges/ --format npy box:size=5
        atrous filter in.npy -o out.npy laplacian:ksize=3,border=replicate
        atrous filter --file-list scans.txt --out-dir parts/ --shard 1/8 sobel:mag

      With --out-dir, files already complete there are skipped and each
      file's outcome goes to OUT/manifest-<I>-of-<N>.jsonl (see 'atrous
      hypercolumns --help', BATCHES).
      """
  )

  @Argument(help: ArgumentHelp("Input files or folders (PNG, JPEG, .npy), then the filters in order.",
                               valueName: "input-or-filter"))
  var items: [String] = []

  @Option(name: [.short, .customLong("output")], help: "Output file (.npy, .png or .jpg), for one input.")
  var output: String?

  @Option(name: .customLong("out-dir"), help: "Folder for the outputs of many inputs, named after each input (--name).")
  var outDir: String?

  @OptionGroup var batchOptions: BatchOptions

  @Option(help: "Output format with --out-dir: png or npy (default: png).")
  var format: String?

  @OptionGroup var encoding: ImageWriteOptions

  @Flag(help: "Filter one gray channel (BT.601 luma, as cv2.cvtColor) instead of each colour channel.")
  var gray = false

  @Flag(help: "Convolve (flip every kernel) instead of correlating.")
  var convolve = false

  @Flag(name: .customLong("filter-alpha"), help: "Filter the alpha channel too instead of passing it through.")
  var filterAlpha = false

  @Option(help: "How values become PNG samples: abs, clamp or normalize (default: normalize after a direction, log or dog, else abs).")
  var map: String?

  @Option(parsing: .unconditional, help: "Multiply values by this before mapping them to PNG samples.")
  var scale: Float = 1

  @Option(parsing: .unconditional, help: "Add this to values (after --scale) before mapping them to PNG samples.")
  var offset: Float = 0

  @Option(name: .customLong("bit-depth"), parsing: .unconditional, help: "PNG output depth, 8 or 16 (default: the input's; 8 for .npy input).")
  var bitDepth: Int?

  @OptionGroup var progress: ProgressOptions

  @OptionGroup var memoryBudget: MemoryOptions

  @Option(parsing: .unconditional, help: "Threads in all, shared by the files run at once (default: the CPUs this process may use).")
  var threads: Int?

  @Flag(help: "Print 'timing: <stage> <milliseconds>' lines (read, filter, write) to standard error.")
  var timings = false

  @Flag(name: .customLong("keep-orientation"), help: "Keep a JPEG's stored orientation instead of applying EXIF orientation.")
  var keepOrientation = false

  @Option(name: .customLong("max-pixels"), parsing: .unconditional, help: "Refuse images whose declared width*height exceeds this.")
  var maxPixels = DecodeOptions.defaultMaxPixels

  /// Filters and inputs, told apart by whether the word before ':' names a filter.
  private var parts: (inputs: [String], filters: [String]) {
    var inputs: [String] = [], filters: [String] = []
    for item in items {
      let name = item.split(separator: ":", maxSplits: 1).first.map { $0.lowercased() } ?? ""
      if FilterSpec.knownNames.contains(name) { filters.append(item) } else { inputs.append(item) }
    }
    return (inputs, filters)
  }

  func validate() throws {
    let (inputs, filters) = parts
    // A word that is no file and looks like a filter (NAME:..., or a
    // known name mistyped) is a filter the user got wrong, not an input.
    for item in inputs where !FileIO.exists(item) {
      let name = String(item.split(separator: ":", maxSplits: 1).first ?? "")
      let near = Spelling.closest(to: name, among: FilterSpec.knownNames.sorted())
      if item.contains(":") || near != nil {
        throw ValidationError("unknown filter '\(name)'\(Spelling.phrase(near)); "
                                + "the filters are \(FilterSpec.knownNames.sorted().joined(separator: ", "))")
      }
    }
    guard !inputs.isEmpty || batchOptions.fileList != nil else { throw ValidationError("give at least one input file") }
    try batchOptions.check(singleOutput: output != nil)
    guard !filters.isEmpty else { throw ValidationError("give at least one filter, e.g. sobel:mag") }
    for spec in filters {
      do {
        _ = try FilterSpec.parse(spec) { _ in Kernel2D(rows: 1, columns: 1, values: [1]) }
      } catch let error as FilterError {
        throw ValidationError("\(spec): \(error)")
      }
    }
    switch (output, outDir) {
    case (nil, nil): throw ValidationError("give -o OUTPUT (one input) or --out-dir FOLDER")
    case (_?, _?): throw ValidationError("give either -o or --out-dir, not both")
    case (let output?, nil):
      guard inputs.count == 1, !FileIO.isDirectory(inputs[0]) else {
        throw ValidationError("-o takes one input file; use --out-dir for several")
      }
      guard let kind = FileKind(path: output) else {
        throw ValidationError("cannot tell the output format of '\(output)': use \(FileKind.extensionsText)")
      }
      if format != nil { throw ValidationError("--format has no effect with -o: the output's extension gives its format") }
      try encoding.check(writing: [kind], outputs: output)
    case (nil, let folder?):
      try OutputFolder.check(folder, option: "--out-dir")
      guard let kind = FileKind(rawValue: outputFormat), kind != .jpeg else { throw ValidationError("--format must be png or npy") }
      try encoding.check(writing: [kind], outputs: "--format \(outputFormat)")
    }
    if let map, ValueMapping(rawValue: map) == nil { throw ValidationError("--map must be abs, clamp or normalize") }
    guard scale.isFinite, offset.isFinite else { throw ValidationError("--scale and --offset must be finite numbers") }
    if let bitDepth, bitDepth != 8 && bitDepth != 16 { throw ValidationError("--bit-depth must be 8 or 16") }
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive") }
  }

  func run() throws {
    let (inputNames, specs) = parts
    var chainFilters: [Filter] = []
    for spec in specs {
      do {
        let filter = try FilterSpec.parse(spec, loadKernel: KernelFile.load)
        chainFilters.append(convolve ? filter.flipped : filter)
      } catch {
        Reporting.printError("error: \(spec): \(error)")
        throw ExitCode.fileFailed
      }
    }
    let chain = FilterChain(chainFilters)
    let files = try BatchFiles.prepare(
      arguments: inputNames, options: batchOptions, output: output, outDir: outDir, kinds: Set(FileKind.allCases),
      extension: outputFormat, fingerprint: { try fingerprint(specs: specs) }, completeFiles: { [$0] })
    let batch = Batch(positions: files.positions, threads: threads, quiet: progress.quiet, shardRun: files.shardRun) {
      files.inputs[$0]
    }
    let readFiles = InputFiles(files.inputs)
    let succeeded = batch.run { position, threadsPerJob, times in
      try process(files.inputs[position], to: files.outputs[position], chain: chain, threads: threadsPerJob,
                  batch: batch, times: times, readFiles: readFiles)
    }
    if timings { batch.printTimings() }
    if !succeeded { throw ExitCode.fileFailed }
  }

  /// Every setting that changes an output, and the kernel files' bytes.
  private func fingerprint(specs: [String]) throws -> Fingerprint {
    var print = Fingerprint(command: "filter")
    print.add("version", AtrousCommand.configuration.version)
    print.add("filters", specs.joined(separator: "\u{0}"))
    for spec in specs {
      for word in spec.split(whereSeparator: { $0 == ":" || $0 == "," }) where word.hasPrefix("file=") {
        try print.addFile("kernel", path: String(word.dropFirst(5)))
      }
    }
    print.add("settings", "gray \(gray) convolve \(convolve) alpha \(filterAlpha) map \(mapping) scale \(scale) offset \(offset) "
                + "bits \(bitDepth.map(String.init) ?? "input") format \(outputFormat) quality \(encoding.quality.map(String.init) ?? "-") "
                + "compression \(encoding.compression.map(String.init) ?? "-") orientation \(!keepOrientation)")
    return print
  }

  /// How values become samples: --map, or the last filter's default.
  private var mapping: ValueMapping {
    if let map { return ValueMapping(rawValue: map)! }
    let last = parts.filters.last?.lowercased() ?? ""
    let name = last.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
    let words = last.split(separator: ":", maxSplits: 1).dropFirst().first?.split(separator: ",").map(String.init) ?? []
    // Angles in radians (0 to 2 pi) and Laplacian-of-Gaussian responses
    // (a few units) would be nearly black as they are.
    let faint = name == "log" || name == "dog" || (["sobel", "scharr", "prewitt"].contains(name) && words.contains("dir"))
    return faint ? .normalize : .abs
  }

  /// The format of outputs into --out-dir.
  private var outputFormat: String { format ?? "png" }

  private func process(_ input: String, to output: String, chain: FilterChain, threads: Int, batch: Batch,
                       times: StageTimes, readFiles: InputFiles) throws {
    try readFiles.ensureNotReplaced(by: output)
    let job = FilterJob(chain: chain, gray: gray, filterAlpha: filterAlpha,
                        decodeOptions: DecodeOptions(maxPixels: maxPixels, applyOrientation: !keepOrientation),
                        threads: threads)
    let kind: FilterJob.Output
    switch FileKind(path: output)! {
    case .npy: kind = .npy
    case .png, .jpeg:
      let format: ImageFormat = FileKind(path: output)! == .png ? .png : .jpeg
      kind = .image(format, bitDepth: bitDepth.flatMap(Image.BitDepth.init(rawValue:)), mapping: mapping,
                    scale: scale, offset: offset, quality: encoding.quality ?? JPEGCodec.defaultQuality,
                    compressionLevel: encoding.compression ?? PNGCodec.defaultCompressionLevel)
    }
    let timings = try job.run(input: input, output: output, as: kind) { rows in
      batch.progress(total: rows, unit: "rows").map { line in { line.advance(by: $0) } }
    }
    times.record("read", timings.read)
    times.record("filter", timings.filter)
    times.record("write", timings.write)
  }
}
