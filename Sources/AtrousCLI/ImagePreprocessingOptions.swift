import AtrousCore
import ArgumentParser
import AtrousFeatures
import AtrousIO
import AtrousNN

/// How an image becomes a network input, as command-line options.
struct ImagePreprocessingOptions: ParsableArguments {
  @Option(help: "Preprocessing preset: default, mnist or ppocr (a built-in model brings its own).")
  var preset: String?

  @Option(help: ArgumentHelp("Resize images to HxW before the model (bilinear, as cv2.resize).", valueName: "HxW"))
  var size: String?

  @Option(parsing: .unconditional, help: "Multiply 0-255 pixel values by this (default 1/255, giving 0-1).")
  var scale: Float?

  @Option(parsing: .unconditional, help: ArgumentHelp("Per-channel mean subtracted after scaling.", valueName: "a,b,c"))
  var mean: String?

  @Option(parsing: .unconditional, help: ArgumentHelp("Per-channel divisor applied after the mean.", valueName: "a,b,c"))
  var std: String?

  @Flag(help: "Feed channels in BGR order (OpenCV's).")
  var bgr = false

  @Flag(help: "Feed one gray channel (BT.601 luma).")
  var gray = false

  func check() throws {
    if let preset, ImagePreprocessing.preset(preset) == nil {
      throw ValidationError("--preset must be one of \(ImagePreprocessing.presetNames.joined(separator: ", "))")
    }
    if let size { try Self.checkSize(size, option: "--size") }
    for (name, text) in [("--mean", mean), ("--std", std)] {
      if let text, Self.parseList(text) == nil { throw ValidationError("\(name) must be finite numbers separated by commas") }
    }
    if let scale, !scale.isFinite || scale == 0 { throw ValidationError("--scale must be a finite number other than 0, not \(scale)") }
    if let std, let values = Self.parseList(std), values.contains(0) { throw ValidationError("--std must not contain 0") }
    if bgr && gray { throw ValidationError("--bgr has no effect with --gray: one gray channel has no order") }
  }

  /// For `run()`, once the model is known: `--bgr` with a model that takes
  /// one gray channel does nothing, and says so.
  func check(against model: LoadedModel) throws {
    if bgr && resolved(for: model).gray {
      throw ValidationError("--bgr has no effect: \(model.name) takes one gray channel")
    }
  }

  /// For `validate()`: HxW with positive sizes, at most the pixels an
  /// image may have (a larger size would ask for memory no machine has).
  static func checkSize(_ text: String, option: String) throws {
    guard let size = parseSize(text) else { throw ValidationError("\(option) must be HxW with positive sizes, e.g. 224x224") }
    let (pixels, overflow) = size.height.multipliedReportingOverflow(by: size.width)
    guard !overflow, pixels <= DecodeOptions.defaultMaxPixels else {
      throw ValidationError("\(option) \(text) is more than \(DecodeOptions.defaultMaxPixels) pixels")
    }
  }

  static func parseSize(_ text: String) -> (height: Int, width: Int)? {
    let parts = text.lowercased().split(separator: "x").map { Int($0) }
    guard parts.count == 2, let h = parts[0], let w = parts[1], h > 0, w > 0 else { return nil }
    return (h, w)
  }

  /// The (1, C, H, W) input of a run without an image (`erf`, `report`):
  /// `--input-size`, else the model's fixed size, else 224x224; C from
  /// the model's declared input, else 1 for a gray preparation and 3.
  static func inputShape(_ inputSize: String?, model: LoadedModel, preparation: ImagePreprocessing) -> [Int] {
    let declared = model.imageInput
    let fixed = declared.flatMap { d -> (Int, Int)? in
      guard d.shape.count == 4, let h = d.shape[2], let w = d.shape[3], h > 0, w > 0 else { return nil }
      return (h, w)
    }
    let size = inputSize.flatMap(parseSize).map { ($0.height, $0.width) } ?? fixed ?? (224, 224)
    let channels = declared.flatMap { $0.shape.count == 4 ? $0.shape[1] : nil } ?? (preparation.gray ? 1 : 3)
    return [1, channels, size.0, size.1]
  }

  static func parseList(_ text: String) -> [Float]? {
    let values = text.split(separator: ",").map { Float($0.trimmed()) }
    return values.isEmpty || values.contains(where: { !($0?.isFinite ?? false) }) ? nil : values.map { $0! }
  }

  /// The preset (given, or the model's own), with each given option on top.
  func resolved(for model: LoadedModel?) -> ImagePreprocessing {
    var p = preset.flatMap(ImagePreprocessing.preset) ?? model?.preprocessing ?? ImagePreprocessing()
    if let size = size.flatMap(Self.parseSize) { p.size = size }
    if let scale { p.scale = scale }
    if let mean = mean.flatMap(Self.parseList) { p.mean = mean }
    if let std = std.flatMap(Self.parseList) { p.std = std }
    if bgr { p.bgr = true }
    if gray { p.gray = true }
    return p
  }

  /// A `.npy` as it is, or a preprocessed image as (1, C, H, W) that fits
  /// `input` (when given).
  static func load(_ path: String, _ preprocessing: ImagePreprocessing, for input: Graph.Input? = nil) throws -> NDArray {
    if try FileIO.readPrefix(path, count: NPY.magicBytes.count) == NPY.magicBytes {
      return NDArray(try NPY.read(path))
    }
    let tensor = try preprocessing.tensor(ImageFile.read(path))
    if let input { try checkSize(tensor, fits: input) }
    return tensor
  }

  /// An image of another size than the model's fixed one is refused with
  /// the `--size` that makes it fit (the model's own error would name
  /// shapes, not the option).
  static func checkSize(_ tensor: NDArray, fits input: Graph.Input) throws {
    try checkSize(tensor.shape, fits: input)
  }

  /// `shape`: (1, C, H, W).
  static func checkSize(_ shape: [Int], fits input: Graph.Input) throws {
    guard input.shape.count == 4, shape.count == 4, let h = input.shape[2], let w = input.shape[3], h > 0, w > 0,
      (shape[2], shape[3]) != (h, w)
    else { return }
    throw ImageSizeError(declared: (h, w), given: (shape[2], shape[3]))
  }
}

/// An image whose size is not the one a model's input is fixed at.
struct ImageSizeError: Error, CustomStringConvertible {
  var declared: (height: Int, width: Int)
  var given: (height: Int, width: Int)

  var description: String {
    "the model takes \(declared.width)x\(declared.height) images (width x height) and this one is "
      + "\(given.width)x\(given.height); add --size \(declared.height)x\(declared.width) to resize it"
  }
}
