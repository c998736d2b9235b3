import ArgumentParser
import AtrousBatch
import AtrousCore
import AtrousFeatures
import AtrousIO
import AtrousNN
import FoundationEssentials

struct FeaturesCommand: ParsableCommand, MemoryBudgeted, RunsModels {
  static let configuration = CommandConfiguration(
    commandName: "features",
    abstract: "Write a model's feature maps as pictures: one PNG per channel and a montage per layer.",
    discussion: """
      For each layer, DIR/<layer>/ holds channel_<k>.png for every channel,
      montage.png with all channels in a grid, each cell numbered where it has
      room and the montage at most --max-side pixels (1x1 maps: a bar chart,
      a bar per channel), and with --npy the raw map as <layer>.npy, (H, W,
      C) float32. DIR/manifest.json lists each layer's shape, value range
      (per channel too), receptive field and where each channel is in the
      montage. Characters
      other than letters, digits, '.', '_' and '-' in folder names become '_'.

      Each channel is scaled from its own minimum to maximum unless
      --shared-scale gives the whole layer one scale.

      EXAMPLES
        atrous features photo.png -o maps/
        atrous features photo.png --model vgg.onnx --layers conv1_2 -o vgg-maps/
        atrous features photos/ --out-dir all-maps/ --colormap viridis

      With --out-dir, inputs whose folder holds its manifest.json already
      are skipped and each file's outcome goes to OUT/manifest-<I>-of-<N>.jsonl
      (see 'atrous hypercolumns --help', BATCHES).
      """
  )

  @Argument(help: ArgumentHelp("Input images (PNG, JPEG), folders of them or patterns such as 'photos/*.png'.", valueName: "image"))
  var inputs: [String] = []

  @Option(help: "A built-in model (default, mnist, ppocr) or an ONNX file.")
  var model = "default"

  @Option(help: ArgumentHelp("Layers (tensor names), comma-separated, or 'all': every feature map (a built-in model's named ones) (default: the model's default layers).", valueName: "a,b|all"))
  var layers: String?

  @Option(name: [.short, .customLong("output")], help: "Output folder, for one input.")
  var output: String?

  @Option(name: .customLong("out-dir"), help: "Folder for many inputs: one subfolder per input, named after it (--name).")
  var outDir: String?

  @OptionGroup var batchOptions: BatchOptions

  @Option(help: "Colormap: gray, viridis, magma or inferno.")
  var colormap = "gray"

  @Option(parsing: .unconditional, help: "Bits per sample of the channel pictures: 8 or 16 (16 with gray only).")
  var bits = 8

  @Flag(name: .customLong("shared-scale"), help: "One value range for all channels of a layer.")
  var sharedScale = false

  @Flag(help: "Also write each layer's raw map as .npy.")
  var npy = false

  @Option(name: .customLong("max-side"), parsing: .unconditional,
          help: "Longest side of a montage in pixels; cells shrink to fit (default: \(MontageLayout.defaultMaxSide)).")
  var maxSide = MontageLayout.defaultMaxSide

  @OptionGroup var preprocessing: ImagePreprocessingOptions

  @OptionGroup var progress: ProgressOptions

  @OptionGroup var memoryBudget: MemoryOptions

  @Option(parsing: .unconditional, help: "Threads in all, shared by the files run at once (default: the CPUs this process may use).")
  var threads: Int?

  func validate() throws {
    guard !inputs.isEmpty || batchOptions.fileList != nil else { throw ValidationError("give at least one input image") }
    try batchOptions.check(singleOutput: output != nil)
    switch (output, outDir) {
    case (nil, nil): throw ValidationError("give -o FOLDER (one input) or --out-dir FOLDER")
    case (_?, _?): throw ValidationError("give either -o or --out-dir, not both")
    case (let folder?, nil):
      guard inputs.count == 1, !FileIO.isDirectory(inputs[0]) else {
        throw ValidationError("-o takes one input image; use --out-dir for several")
      }
      try OutputFolder.check(folder, option: "-o")
    case (nil, let folder?):
      try OutputFolder.check(folder, option: "--out-dir")
    }
    guard let map = Colormap(rawValue: colormap) else { throw ValidationError("--colormap must be gray, viridis, magma or inferno") }
    guard bits == 8 || bits == 16 else { throw ValidationError("--bits must be 8 or 16") }
    if bits == 16 && map != .gray { throw ValidationError("--bits 16 needs --colormap gray") }
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    guard maxSide >= 16 else { throw ValidationError("--max-side must be at least 16, not \(maxSide)") }
    try preprocessing.check()
  }

  func run() throws {
    let loaded = try Reporting.orExit(file: model) { try ModelCatalog.load(model, threads: threads ?? Parallel.coreCount) }
    try preprocessing.check(against: loaded)
    var renderer = FeatureMapRenderer()
    renderer.colormap = Colormap(rawValue: colormap)!
    renderer.bitDepth = bits == 16 ? .sixteen : .eight
    renderer.sharedScale = sharedScale
    let preparation = preprocessing.resolved(for: loaded)
    let files = try BatchFiles.prepare(
      arguments: inputs, options: batchOptions, output: output, outDir: outDir, kinds: FileKind.images, extension: nil,
      fingerprint: {
        var print = try Fingerprint.of(loaded, command: "features")
        print.add("layers", layers)
        print.add("preprocessing", "\(preparation)")
        print.add("pictures", "\(colormap) \(bits) shared \(sharedScale) npy \(npy) side \(maxSide)")
        return print
      },
      completeFiles: { [OutputFolder.join($0, "manifest.json")] })
    let batch = Batch(positions: files.positions, threads: threads, quiet: progress.quiet, shardRun: files.shardRun) {
      files.inputs[$0]
    }
    // One executor for every file: the model is prepared once and shared.
    let executor = try Reporting.orExit(file: model) {
      try Executor(graph: loaded.graph, threads: batch.threadsPerJob)
    }
    let readFiles = InputFiles(files.inputs)
    let succeeded = batch.run { position, _, times in
      // An image's maps, montages and manifest appear together or not at all.
      try ModelFault.attributing(to: model) {
        try OutputGroup.all {
          try process(files.inputs[position], into: files.outputs[position], model: loaded, preparation: preparation,
                      renderer: renderer, executor: executor, batch: batch, times: times, readFiles: readFiles)
        }
      }
    }
    if !succeeded { throw ExitCode.fileFailed }
  }

  private func process(_ input: String, into folder: String, model loaded: LoadedModel, preparation: ImagePreprocessing,
                       renderer: FeatureMapRenderer, executor: Executor, batch: Batch, times: StageTimes,
                       readFiles: InputFiles) throws {
    let tensor = try timed("decode", in: times) { try preparation.tensor(ImageFile.read(input)) }
    guard executor.inputNames.count == 1 else { throw HypercolumnError.inputCount(executor.inputNames.count) }
    if let declared = loaded.imageInput { try ImagePreprocessingOptions.checkSize(tensor, fits: declared) }
    let summary = try NetworkSummary(graph: loaded.graph, inputShapes: [executor.inputNames[0]: tensor.shape])
    let maps = summary.layers.filter { $0.outputShape.count == 4 && $0.outputShape[0] == 1 }
    let names: [String]
    switch layers {
    case nil: names = loaded.defaultLayers
    case "all"?: names = loaded.namedLayers ?? maps.map(\.name)
    case let list?: names = list.split(separator: ",").map { $0.trimmed() }
    }
    for name in names where !maps.contains(where: { $0.name == name }) {
      if summary.layers.contains(where: { $0.name == name }) {
        throw HypercolumnError.notAMap(layer: name, shape: summary.layers.first { $0.name == name }!.outputShape)
      }
      throw HypercolumnError.unknownLayer(name, known: maps.map(\.name))
    }
    try FileIO.makeFolder(folder)
    let results = try timed("model", in: times) {
      try executor.run([executor.inputNames[0]: tensor], outputs: names, standardLayout: false)
    }
    let clock = ContinuousClock(), writing = clock.now
    defer { times.record("write", (clock.now - writing).milliseconds) }
    var entries: [FeatureManifest.Layer] = []
    let pictures = batch.progress(total: names.reduce(0) { $0 + (results[$1]?.shape[1] ?? 0) }, unit: "maps")
    for name in names {
      let stored = results[name]!.toChannelsLast().storage!
      let map = stored.reshaped(Array(stored.shape.dropFirst()))  // (H, W, C)
      let sub = RunCommand.fileName(for: name).dropLast(4)
      let layerFolder = OutputFolder.join(folder, String(sub))
      try FileIO.makeFolder(layerFolder)
      let ranges = renderer.ranges(map)
      let digits = max(3, String(map.shape[2] - 1).count)
      for channel in 0..<map.shape[2] {
        let file = layerFolder + "/channel_" + String(repeating: "0", count: digits - String(channel).count) + "\(channel).png"
        try readFiles.ensureNotReplaced(by: file)
        try ImageFile.write(renderer.render(map, channel: channel, range: ranges[channel]), to: file, format: .png)
        pictures?.advance()
      }
      var montageRenderer = renderer
      montageRenderer.bitDepth = .eight
      let montage: FeatureManifest.Montage, picture: Image
      if map.shape[0] == 1 && map.shape[1] == 1 {
        // A cell per channel would be one flat colour each: bars say more.
        picture = montageRenderer.bars(map, ranges: ranges)
        montage = .init(kind: "bars", barWidth: FeatureMapRenderer.barWidth(channels: map.shape[2]))
      } else {
        let layout = MontageLayout(mapHeight: map.shape[0], mapWidth: map.shape[1], channels: map.shape[2], maxSide: maxSide)
        picture = montageRenderer.montage(map, ranges: ranges, layout: layout)
        montage = .init(kind: "grid", columns: layout.columns, rows: layout.rows, cell: [layout.cellHeight, layout.cellWidth],
                        gap: layout.gap, channelOrigins: (0..<map.shape[2]).map { layout.origin(of: $0) }.map { [$0.x, $0.y] })
      }
      try ImageFile.write(picture, to: OutputFolder.join(layerFolder, "montage.png"), format: .png)
      if npy { try NPY.write(map, to: OutputFolder.join(layerFolder, sub + ".npy")) }
      let own = renderer.sharedScale ? FeatureMapRenderer().ranges(map) : ranges
      let layer = summary.layers.first { $0.name == name }!
      entries.append(FeatureManifest.Layer(
        name: name, folder: String(sub), shape: map.shape,
        range: [own.map(\.low).min() ?? 0, own.map(\.high).max() ?? 0],
        channelRanges: own.map { [$0.low, $0.high] }, montage: montage,
        receptiveField: HypercolumnSidecar.Field(layer.receptiveField)))
    }
    let manifest = FeatureManifest(image: input, model: model, inputSize: [tensor.shape[2], tensor.shape[3]],
                                   colormap: renderer.colormap.rawValue, sharedScale: renderer.sharedScale, layers: entries)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try AtomicFileWriter.write(Array(try encoder.encode(manifest)) + [0x0A], to: OutputFolder.join(folder, "manifest.json"))
  }
}

/// DIR/manifest.json of `atrous features`.
struct FeatureManifest: Codable {
  struct Layer: Codable {
    var name: String
    var folder: String
    /// (height, width, channels).
    var shape: [Int]
    /// Smallest and largest value over the layer.
    var range: [Float]
    var channelRanges: [[Float]]
    var montage: Montage
    var receptiveField: HypercolumnSidecar.Field

    enum CodingKeys: String, CodingKey {
      case name, folder, shape, range, montage
      case channelRanges = "channel_ranges"
      case receptiveField = "receptive_field"
    }
  }

  /// How montage.png is laid out: a grid of cells, channel k's cell with
  /// its top-left pixel at channel_origins[k] ((x, y), its number drawn in
  /// the corner where it fits), or, for 1x1 maps, bars of bar_width pixels,
  /// channel k's starting at x = k * bar_width.
  struct Montage: Codable {
    var kind: String
    var columns: Int? = nil, rows: Int? = nil
    /// (height, width) of a cell.
    var cell: [Int]? = nil
    var gap: Int? = nil
    var channelOrigins: [[Int]]? = nil
    var barWidth: Int? = nil

    enum CodingKeys: String, CodingKey {
      case kind, columns, rows, cell, gap
      case channelOrigins = "channel_origins"
      case barWidth = "bar_width"
    }
  }

  var image: String
  var model: String
  var inputSize: [Int]
  var colormap: String
  var sharedScale: Bool
  var layers: [Layer]

  enum CodingKeys: String, CodingKey {
    case image, model, colormap, layers
    case inputSize = "input_size"
    case sharedScale = "shared_scale"
  }
}
