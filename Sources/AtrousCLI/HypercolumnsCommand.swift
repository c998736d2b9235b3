import ArgumentParser
import AtrousBatch
import AtrousCore
import AtrousFeatures
import AtrousIO
import AtrousNN

struct HypercolumnsCommand: ParsableCommand, MemoryBudgeted, RunsModels {
  static let configuration = CommandConfiguration(
    commandName: "hypercolumns",
    abstract: "Export per-pixel hypercolumns: chosen layers upsampled to the input size and concatenated.",
    discussion: """
      Each layer's map is resized to the size the model saw (bilinear with
      half-pixel centres, as cv2.resize INTER_LINEAR and PyTorch's
      align_corners=False; --align-corners for the other rule; a 1x1 map is
      broadcast) and the maps are concatenated per pixel in the order given.

      --upsample jbu or guided uses the image as a guide, so that features
      follow its edges instead of smearing across them: joint bilateral
      upsampling (--spatial-sigma in map cells, --range-sigma on colours
      from 0 to 1), or the guided filter of the bilinear result (--radius
      in pixels, --epsilon), solved on each map's grid. Neither needs
      training.

      OUTPUT
        OUT.npy   (H, W, C) float32 by default; --layout chw, --dtype f16.
        OUT.json  each layer's channel range, map shape and receptive field.
      With --pixels or --sample, only those pixels: OUT.npy is (N, C) and
      OUT-pixels.npy holds their (x, y) as int64, one row each.

      The whole (H, W, C) array is never held in memory: rows are made and
      written in bands. When the model's maps for a large image would not
      fit in --memory, the model runs on overlapping tiles whose margins
      come from the receptive fields; the result equals a whole-image run.

      EXAMPLES
        atrous hypercolumns photo.png -o hc.npy
        atrous hypercolumns photo.png --model vgg.onnx --layers conv2_2 -o v.npy
        atrous hypercolumns photo.png --pixels points.csv -o some.npy
        atrous hypercolumns photo.png --model vgg.onnx --upsample jbu -o sharp.npy
        atrous hypercolumns photos/ --out-dir columns/ --dtype f16
        atrous hypercolumns photos/ --recursive --out-dir c/ --shard 0/4

      BATCHES
      With --out-dir, files already complete there are skipped, each file's
      outcome is appended to OUT/manifest-<I>-of-<N>.jsonl, and --shard (or
      a Slurm array's or Kubernetes Indexed Job's index) splits the sorted
      list between tasks. 'atrous manifest OUT' sums the shards up.
      """
  )

  @Argument(help: ArgumentHelp("Input images (PNG, JPEG), folders of them or patterns such as 'photos/*.png'.", valueName: "image"))
  var inputs: [String] = []

  @Option(help: "A built-in model (default, mnist, ppocr) or an ONNX file.")
  var model = "default"

  @Option(help: ArgumentHelp("Layers (tensor names in the graph), comma-separated (default: the graph outputs).",
                             valueName: "a,b"))
  var layers: String?

  @Option(name: [.short, .customLong("output")], help: "Output .npy, for one input.")
  var output: String?

  @Option(name: .customLong("out-dir"), help: "Folder for the outputs of many inputs, named after each input (--name).")
  var outDir: String?

  @OptionGroup var batchOptions: BatchOptions

  @Flag(name: .customLong("align-corners"), help: "Resize with corners aligned instead of half-pixel centres.")
  var alignCorners = false

  @Option(help: ArgumentHelp("Upsampling: bilinear, jbu (joint bilateral) or guided (guided filter); the last two follow the image's edges.",
                             valueName: "method"))
  var upsample = "bilinear"

  @Option(name: .customLong("spatial-sigma"), parsing: .unconditional, help: ArgumentHelp(
    "jbu: spatial sigma in map cells (default \(HypercolumnUpsampling.defaultSpatialSigma)); cells within 2 sigma count.",
    valueName: "cells"))
  var spatialSigma: Double?

  @Option(name: .customLong("range-sigma"), parsing: .unconditional, help: ArgumentHelp(
    "jbu: colour sigma, colours from 0 to 1 (default \(HypercolumnUpsampling.defaultRangeSigma)).", valueName: "sigma"))
  var rangeSigma: Double?

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "guided: box radius in image pixels, at least one map cell (default \(HypercolumnUpsampling.defaultRadius)).",
    valueName: "pixels"))
  var radius: Double?

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "guided: regularization on colours from 0 to 1; smaller follows weaker edges (default \(HypercolumnUpsampling.defaultEpsilon)).",
    valueName: "epsilon"))
  var epsilon: Double?

  @Option(help: "Element order: hwc or chw.")
  var layout = "hwc"

  @Option(help: "Element type: f32 or f16.")
  var dtype = "f32"

  @Option(parsing: .unconditional, help: "Tile side in input pixels (default: the whole image, or tiles when the maps would not fit --memory).")
  var tile: Int?

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "Megabytes the model's activations may take in all, shared by the files run at once; tiles are chosen to fit (default: \(HypercolumnsCommand.memoryPerFile) per file, at most half the memory limit).",
    valueName: "MB"))
  var memory: Int?

  @Option(help: ArgumentHelp("Only the pixels listed in this CSV file (x,y per line, pixel indices).", valueName: "file.csv"))
  var pixels: String?

  @Option(parsing: .unconditional, help: "Only this many pixels, drawn at random without repetition.")
  var sample: Int?

  @Option(parsing: .unconditional, help: "Seed for --sample.")
  var seed: UInt64 = 0

  @Option(help: ArgumentHelp("Also write a PNG: mean activation per pixel beside a PCA-to-RGB picture.", valueName: "file.png"))
  var preview: String?

  @OptionGroup var preprocessing: ImagePreprocessingOptions

  @OptionGroup var progress: ProgressOptions

  @OptionGroup var memoryBudget: MemoryOptions

  @Option(parsing: .unconditional, help: "Threads in all, shared by the files run at once (default: the CPUs this process may use).")
  var threads: Int?

  @Flag(help: "Print 'timing: <stage> <milliseconds>' lines (load: the model read and prepared, once; then per file summed: decode, model, upsample+concat, write) to standard error.")
  var timings = false

  func validate() throws {
    guard !inputs.isEmpty || batchOptions.fileList != nil else { throw ValidationError("give at least one input image") }
    try batchOptions.check(singleOutput: output != nil)
    switch (output, outDir) {
    case (nil, nil): throw ValidationError("give -o OUT.npy (one input) or --out-dir FOLDER")
    case (_?, _?): throw ValidationError("give either -o or --out-dir, not both")
    case (let output?, nil):
      guard inputs.count == 1, !FileIO.isDirectory(inputs[0]) else {
        throw ValidationError("-o takes one input image; use --out-dir for several")
      }
      guard FileKind(path: output) == .npy else { throw ValidationError("-o must name a .npy file") }
    case (nil, let folder?):
      try OutputFolder.check(folder, option: "--out-dir")
      guard preview == nil else { throw ValidationError("--preview takes one input (use -o)") }
    }
    guard HypercolumnUpsampling.names.contains(upsample) else {
      throw ValidationError("--upsample must be \(HypercolumnUpsampling.names.joined(separator: ", ")), not '\(upsample)'")
    }
    for (name, value, method) in [("--spatial-sigma", spatialSigma, "jbu"), ("--range-sigma", rangeSigma, "jbu"),
                                  ("--radius", radius, "guided"), ("--epsilon", epsilon, "guided")] {
      guard let value else { continue }
      guard upsample == method else { throw ValidationError("\(name) applies to --upsample \(method)") }
      guard value > 0 && value.isFinite else { throw ValidationError("\(name) must be a positive number") }
    }
    guard HypercolumnOptions.Layout(rawValue: layout) != nil else { throw ValidationError("--layout must be hwc or chw") }
    guard HypercolumnOptions.DType(rawValue: dtype) != nil else { throw ValidationError("--dtype must be f32 or f16") }
    if let tile, tile < 1 { throw ValidationError("--tile must be at least 1") }
    if let memory, memory < 1 { throw ValidationError("--memory must be at least 1 (megabytes)") }
    if pixels != nil && sample != nil { throw ValidationError("give either --pixels or --sample, not both") }
    if let sample, sample < 1 { throw ValidationError("--sample must be at least 1") }
    if let preview, !preview.lowercased().hasSuffix(".png") { throw ValidationError("--preview must name a .png file") }
    if let layers, layers.split(separator: ",").isEmpty { throw ValidationError("--layers needs at least one name") }
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    try preprocessing.check()
  }

  /// The default activation memory of one file at once, in megabytes.
  static let memoryPerFile = 768

  func run() throws {
    let clock = ContinuousClock(), started = clock.now
    let loaded = try Reporting.orExit(file: model) { try ModelCatalog.load(model, threads: threads ?? Parallel.coreCount) }
    try preprocessing.check(against: loaded)
    var options = HypercolumnOptions()
    options.alignment = alignCorners ? .alignCorners : .halfPixel
    options.upsampling = HypercolumnUpsampling.named(upsample, spatialSigma: spatialSigma, rangeSigma: rangeSigma,
                                                     radius: radius, epsilon: epsilon)!
    options.layout = HypercolumnOptions.Layout(rawValue: layout)!
    options.dtype = HypercolumnOptions.DType(rawValue: dtype)!
    options.tile = tile
    let names = layers.map { $0.split(separator: ",").map { $0.trimmed() } }
      ?? loaded.defaultLayers
    try Reporting.orExit(file: model) { try loaded.check(layers: names) }
    let listed = try Reporting.orExit(file: pixels ?? "") { try pixels.map(PixelList.read) }
    let preparation = preprocessing.resolved(for: loaded)
    options.guideColours = preparation.guideColours
    let sparse = listed != nil || sample != nil
    let files = try BatchFiles.prepare(
      arguments: inputs, options: batchOptions, output: output, outDir: outDir, kinds: FileKind.images, extension: "npy",
      fingerprint: {
        var print = try Fingerprint.of(loaded, command: "hypercolumns")
        print.add("layers", names.joined(separator: "\u{0}"))
        print.add("resize", "\(options.alignment)")
        if options.upsampling != .bilinear { print.add("upsample", "\(options.upsampling)") }
        print.add("layout", layout)
        print.add("dtype", dtype)
        print.add("preprocessing", "\(preparation)")
        if let pixels { try print.addFile("pixels", path: pixels) }
        print.add("sample", sample.map { "\($0) seed \(seed)" })
        return print
      },
      completeFiles: { output in
        let (sidecar, pixels) = Self.companions(of: output)
        return [output, sidecar] + (sparse ? [pixels] : [])
      })
    let batch = Batch(positions: files.positions, threads: threads, quiet: progress.quiet, shardRun: files.shardRun) {
      files.inputs[$0]
    }
    options.threads = batch.threadsPerJob
    // Activations: the total given, or the default per file capped at half
    // the memory this process may use, shared by the files run at once.
    let total = memory.map { $0 << 20 } ?? min((Self.memoryPerFile << 20) * batch.workers, MemoryBudget.detected.bytes / 3 * 2)
    options.memoryBudget = max(1 << 20, total / batch.workers)
    // One extractor for every file: the model is prepared once (weights
    // packed, plans made per input size) and shared by the jobs.
    let extractor = try Reporting.orExit(file: model) {
      try HypercolumnExtractor(graph: loaded.graph, layers: names, options: options)
    }
    // What a command pays once, before its first file: shown apart from
    // the files' stages, which a folder's run shares it among.
    batch.totals.record("load", (clock.now - started).milliseconds)
    let readFiles = InputFiles(files.inputs + [model] + (pixels.map { [$0] } ?? []))
    let succeeded = batch.run { position, _, times in
      try ModelFault.attributing(to: model) {
        // The array, its sidecar, pixels and preview appear together or not at all.
        try OutputGroup.all {
          try process(files.inputs[position], to: files.outputs[position], extractor: extractor, preparation: preparation,
                      declared: loaded.imageInput, pixels: listed, batch: batch, times: times,
                      readFiles: readFiles)
        }
      }
    }
    if timings { batch.printTimings() }
    if !succeeded { throw ExitCode.fileFailed }
  }

  private func process(_ input: String, to output: String, extractor: HypercolumnExtractor, preparation: ImagePreprocessing,
                       declared: Graph.Input?, pixels listed: [(x: Int, y: Int)]?, batch: Batch, times: StageTimes,
                       readFiles: InputFiles) throws {
    let (sidecarPath, pixelsPath) = Self.companions(of: output)
    let sparse = listed != nil || sample != nil
    let written = [output, sidecarPath] + (sparse ? [pixelsPath] : []) + (preview.map { [$0] } ?? [])
    for path in written { try readFiles.ensureNotReplaced(by: path) }
    // Decoded as the tiles ask for rows, when the preparation keeps the size.
    let image = try timed("decode", in: times) { try HypercolumnInput.file(input, preparation: preparation) }
    if let declared { try ImagePreprocessingOptions.checkSize(image.shape, fits: declared) }
    let (height, width, channels) = (image.height, image.width, image.channels)
    let plan = try extractor.plan(height: height, width: width, channels: channels)
    if let tile, plan.cropOverhead > 4 {
      batch.warnOnce("tile", "warning: --tile \(tile): the model runs on \(Int(plan.cropOverhead.rounded())) times the image's area "
                       + "in crops (each tile's crop adds the layers' receptive fields around it); a larger tile does less")
    }
    if sparse {
      let points = listed ?? Self.randomPixels(count: sample!, width: width, height: height, seed: seed)
      let (values, stages) = try extractor.sampleTimed(image, plan: plan, pixels: points)
      stages.record(in: times)
      try timed("write", in: times) {
        var array = NPYArray(values)
        if extractor.options.dtype == .f16 {
          array = NPYArray(float16: values)
          Self.warnOfOverflows(values.scalars.reduce(0) { $0 + (Float16Bits.overflows($1) ? 1 : 0) }, in: output)
        }
        try NPY.write(array, to: output)
        try NPY.write(NPYArray(shape: [points.count, 2], integers: points.flatMap { [Int64($0.x), Int64($0.y)] }), to: pixelsPath)
        let sidecar = HypercolumnSidecar(image: input, model: model, plan: plan, options: extractor.options,
                                         shape: [points.count, plan.channels], layout: "nc",
                                         pixels: pixelsPath.split(separator: "/").last.map(String.init))
        try AtomicFileWriter.write(sidecar.encoded(), to: sidecarPath)
        if let preview { try ImageFile.write(Self.sparsePreview(values, at: points, width: width, height: height), to: preview, format: .png) }
      }
      return
    }
    var picture: HypercolumnPreview?
    if preview != nil {
      let points = Self.randomPixels(count: min(2048, width * height), width: width, height: height, seed: 1)
      picture = HypercolumnPreview(width: width, height: height, samples: try extractor.sample(image, plan: plan, pixels: points))
    }
    let pixels = batch.progress(total: height * width, unit: "pixels")
    let stages = try extractor.exportTimed(image, plan: plan, to: output) { rows, columns, band in
      picture?.observe(rows: rows, columns: columns, values: band)
      pixels?.advance(by: rows.count * columns.count)
    }
    stages.record(in: times)
    Self.warnOfOverflows(stages.float16Overflows, in: output)
    try timed("write", in: times) {
      let shape = extractor.options.layout == .hwc ? [height, width, plan.channels] : [plan.channels, height, width]
      let sidecar = HypercolumnSidecar(image: input, model: model, plan: plan, options: extractor.options, shape: shape,
                                       layout: extractor.options.layout.rawValue)
      try AtomicFileWriter.write(sidecar.encoded(), to: sidecarPath)
      if let picture, let preview { try ImageFile.write(picture.image(), to: preview, format: .png) }
    }
  }

  /// The files written beside an array `OUT.npy` (any case of the
  /// extension): its sidecar `OUT.json` and, for a sparse export, its
  /// pixels `OUT-pixels.npy`.
  static func companions(of output: String) -> (sidecar: String, pixels: String) {
    let stem = String(output.dropLast(4))
    return (stem + ".json", stem + "-pixels.npy")
  }

  /// A warning on standard error when `count` values of `output` became
  /// infinity in float16.
  static func warnOfOverflows(_ count: Int, in output: String) {
    guard count > 0 else { return }
    Reporting.printError("warning: \(output): \(count) values beyond float16's range (+-65504) were written as infinity; "
                           + "--dtype f32 keeps them")
  }

  /// The preview of a sparse export: the chosen pixels alone, on black,
  /// each as a dot a 200th of the image's shorter side across (so that it
  /// can be seen), the components taken from the first 2048 of them.
  static func sparsePreview(_ values: Tensor, at points: [(x: Int, y: Int)], width: Int, height: Int) -> Image {
    let c = values.shape[1], sampled = min(points.count, 2048)
    let picture = HypercolumnPreview(width: width, height: height,
                                     samples: Tensor(shape: [sampled, c], values: Array(values.scalars[0..<(sampled * c)])))
    let radius = min(width, height) / 400
    values.scalars.withUnsafeBufferPointer { all in
      for (i, point) in points.enumerated() {
        let column = UnsafeBufferPointer(rebasing: all[(i * c)..<((i + 1) * c)])
        for y in max(0, point.y - radius)...min(height - 1, point.y + radius) {
          for x in max(0, point.x - radius)...min(width - 1, point.x + radius) {
            picture.observe(rows: y..<(y + 1), columns: x..<(x + 1), values: column)
          }
        }
      }
    }
    return picture.image()
  }

  /// `count` distinct pixels drawn with a seeded generator.
  static func randomPixels(count: Int, width: Int, height: Int, seed: UInt64) -> [(x: Int, y: Int)] {
    var random = SeededRandom(seed: seed)
    let total = width * height
    if count >= total { return (0..<total).map { ($0 % width, $0 / width) } }
    var chosen = Set<Int>(), order: [Int] = []
    while order.count < count {
      let p = Int.random(in: 0..<total, using: &random)
      if chosen.insert(p).inserted { order.append(p) }
    }
    return order.map { ($0 % width, $0 / width) }
  }
}

extension HypercolumnTimings {
  /// Adds the stages to a file's times.
  func record(in times: StageTimes) {
    times.record("model", model)
    times.record("upsample+concat", upsample)
    times.record("write", write)
  }
}
