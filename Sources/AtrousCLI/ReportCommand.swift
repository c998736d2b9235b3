import ArgumentParser
import AtrousCore
import AtrousFeatures
import AtrousIO
import AtrousNN

struct ReportCommand: ParsableCommand, MemoryBudgeted {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Write one self-contained HTML page that shows a model, layer by layer.",
    discussion: """
      Per layer: op, output shape, parameters, MACs, theoretical receptive
      field and jump, and the effective field of its centre unit (radii
      holding 50% and 90% of the gradient's magnitude, and its heatmap with
      the theoretical field outlined; see 'atrous erf'). With an image: a
      montage of each layer's feature maps (the first --channels), and the
      hypercolumn preview of --layers. Pictures are embedded: the page opens
      in a browser from the file, with no server and no network.

      EXAMPLES
        atrous report vgg.onnx photo.png -o report.html
        atrous report model.onnx -o model.html
        atrous report default photo.png --layers sigma1.0,sigma5.0 -o r.html
      """
  )

  @Argument(help: "An ONNX model file, or a built-in model: default, mnist or ppocr.")
  var model: String

  @Argument(help: ArgumentHelp("An image (PNG, JPEG) for the feature maps, preview and effective fields.", valueName: "image"))
  var image: String?

  @Option(name: [.short, .customLong("output")], help: "Output .html file.")
  var output: String

  @Option(name: .customLong("input-size"), help: ArgumentHelp(
    "Input height and width without an image (default: the model's fixed size, else 224x224).", valueName: "HxW"))
  var inputSize: String?

  @Option(help: ArgumentHelp("Layers of the hypercolumn preview (default: the model's feature layers that are maps, else its deepest map).",
                             valueName: "a,b"))
  var layers: String?

  @Option(name: .customLong("erf-layers"), help: ArgumentHelp(
    "Layers whose effective field is measured, or 'none' (default: up to 24 maps spread over the depth).", valueName: "a,b"))
  var erfLayers: String?

  @Option(name: .customLong("erf-samples"), parsing: .unconditional, help: "Random inputs per effective field without an image (default 2).")
  var erfSamples = 2

  @Flag(name: .customLong("uniform-weights"), help: "Effective fields with convolution weights 1 / taps and biases 0.")
  var uniformWeights = false

  @Option(parsing: .unconditional, help: "Channels shown per feature-map montage (default 64).")
  var channels = 64

  @Option(parsing: .unconditional, help: "Threads (default: the CPUs this process may use).")
  var threads: Int?

  @OptionGroup var preprocessing: ImagePreprocessingOptions

  @OptionGroup var memoryBudget: MemoryOptions

  func validate() throws {
    guard output.lowercased().hasSuffix(".html") || output.lowercased().hasSuffix(".htm") else {
      throw ValidationError("-o must name an .html file")
    }
    if let inputSize {
      try ImagePreprocessingOptions.checkSize(inputSize, option: "--input-size")
      if image != nil { throw ValidationError("--input-size is for reports without an image; the image sets the size") }
    }
    if erfSamples < 1 { throw ValidationError("--erf-samples must be at least 1") }
    if channels < 1 { throw ValidationError("--channels must be at least 1") }
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    try preprocessing.check()
  }

  static func names(_ list: String) -> [String] {
    list.split(separator: ",").map { $0.trimmed() }.filter { !$0.isEmpty }
  }

  func run() throws {
    let loaded = try Reporting.orExit(file: model) { try ModelCatalog.load(model, threads: threads ?? Parallel.coreCount) }
    try preprocessing.check(against: loaded)
    try Reporting.orExit(file: output) { try FileIO.ensure(output: output, isNotOneOf: [model] + (image.map { [$0] } ?? [])) }
    let preparation = preprocessing.resolved(for: loaded)
    let declared = loaded.imageInput
    let input: NDArray
    var picture: Image?
    if let image {
      let decoded = try Reporting.orExit(file: image) { try ImageFile.read(image) }
      input = try Reporting.orExit(file: image) { try preparation.tensor(decoded) }
      if let declared { try Reporting.orExit(file: image) { try ImagePreprocessingOptions.checkSize(input.shape, fits: declared) } }
      picture = decoded
    } else {
      let shape = ImagePreprocessingOptions.inputShape(inputSize, model: loaded, preparation: preparation)
      input = NDArray(shape: shape, floats: [Float](repeating: 0, count: shape.reduce(1, *)))
    }
    var options = ModelReport.Options()
    if let erfLayers { options.effectiveFieldLayers = erfLayers == "none" ? [] : Self.names(erfLayers) }
    options.effectiveFieldSamples = erfSamples
    options.uniformWeights = uniformWeights
    options.montageChannels = channels
    options.threads = threads ?? Parallel.coreCount
    let asked = layers.map(Self.names) ?? loaded.defaultLayers
    try Reporting.orExit(file: model) { try loaded.check(layers: asked + (options.effectiveFieldLayers ?? [])) }
    options.hypercolumnLayers = picture == nil ? [] : asked
    options.suggestedLayers = layers == nil
    let title = "\(model.split(separator: "/").last.map(String.init) ?? model)" + (image.map { " on \($0.split(separator: "/").last!)" } ?? "")
    let report = try ModelFault.attributing(to: model) {
      try Reporting.orExit(file: model) {
        try ModelReport(title: title, graph: loaded.graph, input: input, image: picture, guideColours: preparation.guideColours,
                        options: options)
      }
    }
    try Reporting.orExit(file: output) { try AtomicFileWriter.write(Array(report.html.utf8), to: output) }
  }
}
