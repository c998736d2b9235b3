import ArgumentParser
import AtrousCore
import AtrousFeatures
import AtrousIO
import AtrousNN

struct ErfCommand: ParsableCommand, MemoryBudgeted {
  static let configuration = CommandConfiguration(
    commandName: "erf",
    abstract: "Measure a layer's effective receptive field: how much each input pixel moves its centre unit.",
    discussion: """
      Back-propagates from the centre unit of --layer (summed over its
      channels) to the input, and takes the gradient's magnitude per input
      pixel (summed over the input's channels): with --image, at that image;
      without, the mean over --samples seeded random inputs of --input-size
      (Luo et al. 2016). --uniform-weights sets every convolution's weights
      to 1 / taps and biases to 0, as in their analysis.

      OUTPUT
        OUT.png   the magnitude as a heatmap, the theoretical field outlined
        OUT.npy   the magnitudes, (H, W) float32
        OUT.json  the unit, the theoretical field, and the radii (input
                  pixels from the field's centre) holding 50%, 90% and 99%
                  of the magnitude

      EXAMPLES
        atrous erf model.onnx --layer conv5 --uniform-weights -o erf.png
        atrous erf default --layer sigma5.0 --input-size 96x96 -o erf.png
        atrous erf vgg.onnx --layer conv2_2 --image photo.png -o erf.png
      """
  )

  @Argument(help: "An ONNX model file, or a built-in model: default, mnist or ppocr.")
  var model: String

  @Option(help: "The layer (tensor name in the graph) whose centre unit is measured.")
  var layer: String

  @Option(name: .customLong("input-size"), help: ArgumentHelp(
    "Input height and width for random inputs (default: the model's fixed size, else 224x224).", valueName: "HxW"))
  var inputSize: String?

  @Option(help: ArgumentHelp("The gradient at this image (PNG, JPEG) instead of random inputs.", valueName: "image"))
  var image: String?

  @Option(parsing: .unconditional, help: "Random inputs the magnitude is averaged over (default 8).")
  var samples = 8

  @Option(parsing: .unconditional, help: "Seed of the random inputs.")
  var seed: UInt64 = 0

  @Flag(name: .customLong("uniform-weights"), help: "Convolution weights 1 / taps, biases 0, batch norms the identity.")
  var uniformWeights = false

  @Option(name: [.short, .customLong("output")], help: "Output .png; the .npy and .json take its name.")
  var output: String

  @Option(parsing: .unconditional, help: "Threads (default: the CPUs this process may use).")
  var threads: Int?

  @OptionGroup var preprocessing: ImagePreprocessingOptions

  @OptionGroup var memoryBudget: MemoryOptions

  func validate() throws {
    guard FileKind(path: output) == .png else { throw ValidationError("-o must name a .png file") }
    if let inputSize {
      try ImagePreprocessingOptions.checkSize(inputSize, option: "--input-size")
      if image != nil { throw ValidationError("--input-size is for random inputs; with --image the image sets the size") }
    }
    if samples < 1 { throw ValidationError("--samples must be at least 1") }
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    try preprocessing.check()
  }

  func run() throws {
    let loaded = try Reporting.orExit(file: model) { try ModelCatalog.load(model, threads: threads ?? Parallel.coreCount) }
    try preprocessing.check(against: loaded)
    try Reporting.orExit(file: model) { try loaded.check(layers: [layer]) }
    let stem = String(output.dropLast(4))
    let (arrayPath, jsonPath) = (stem + ".npy", stem + ".json")
    for path in [output, arrayPath, jsonPath] {
      try Reporting.orExit(file: path) { try FileIO.ensure(output: path, isNotOneOf: [model] + (image.map { [$0] } ?? [])) }
    }
    let declared = loaded.imageInput
    let inputs: [NDArray]
    if let image {
      let preparation = preprocessing.resolved(for: loaded)
      let tensor = try Reporting.orExit(file: image) { try preparation.tensor(ImageFile.read(image)) }
      if let declared { try Reporting.orExit(file: image) { try ImagePreprocessingOptions.checkSize(tensor.shape, fits: declared) } }
      inputs = [tensor]
    } else {
      let shape = ImagePreprocessingOptions.inputShape(inputSize, model: loaded, preparation: preprocessing.resolved(for: loaded))
      // Refused before the inputs are drawn when the pass would not fit.
      try ModelFault.attributing(to: model) {
        try Reporting.orExit(file: model) {
          let summary = try NetworkSummary(graph: loaded.graph, inputShapes: [declared?.name ?? loaded.graph.inputs[0].name: shape])
          try InputGradient.checkMemory(summary, inputShape: shape, inputs: samples)
        }
      }
      inputs = EffectiveReceptiveField.randomInputs(shape: shape, count: samples, seed: seed)
    }
    let graph = uniformWeights ? EffectiveReceptiveField.uniformWeights(loaded.graph) : loaded.graph
    let field = try ModelFault.attributing(to: model) {
      try Reporting.orExit(file: model) {
        try EffectiveReceptiveField.measure(graph: graph, layer: layer, inputs: inputs, threads: threads ?? Parallel.coreCount)
      }
    }
    let (h, w) = (field.magnitude.shape[0], field.magnitude.shape[1])
    let region = field.region
    let radii = [0.5, 0.9, 0.99].map { field.radius(holding: $0) }
    let summary: JSONValue = [
      "layer": JSONValue(layer), "unit": JSONValue([field.unit.row, field.unit.column]),
      "layer_shape": JSONValue(field.layerShape), "input_size": JSONValue([h, w]),
      "image": image.map(JSONValue.init) ?? .null, "samples": JSONValue(field.samples),
      "seed": image == nil ? .unsigned(seed) : .null, "uniform_weights": JSONValue(uniformWeights),
      "array": JSONValue(arrayPath.split(separator: "/").last.map(String.init)!),
      "theoretical_field": ["size": JSONValue(field.field.size), "jump": JSONValue(field.field.jump),
                            "centre": JSONValue([region.centre.x, region.centre.y]),
                            "box": JSONValue([region.box.0, region.box.1, region.box.2, region.box.3])],
      "radius_50": JSONValue(radii[0]), "radius_90": JSONValue(radii[1]), "radius_99": JSONValue(radii[2]),
      "share_inside_theoretical_field": JSONValue(field.shareInsideField),
    ]
    let json = Array(try summary.text(pretty: true).utf8)
    // Small inputs are drawn larger, so that the picture can be seen.
    let scale = max(1, 256 / max(h, w))
    try Reporting.orExit(file: output) {
      try OutputGroup.all {
        try ImageFile.write(field.picture(scale: scale), to: output, format: .png)
        try NPY.write(NPYArray(field.magnitude), to: arrayPath)
        try AtomicFileWriter.write(Array(json) + [0x0A], to: jsonPath)
      }
    }
    print("\(layer) unit (\(field.unit.row), \(field.unit.column)): theoretical field "
            + "\(fmt(field.field.size[0]))x\(fmt(field.field.size[1])); 50%, 90%, 99% of the magnitude within "
            + radii.map { String(printf: "%.1f", $0) }.joined(separator: ", ") + " pixels")
  }
}
