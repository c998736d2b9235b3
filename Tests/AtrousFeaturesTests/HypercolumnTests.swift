import AtrousCore
import AtrousFeatures
import AtrousIO
import AtrousNN
import AtrousONNX
import AtrousTestSupport
import Synchronization
import Testing

/// Hypercolumns against the stored output of the Python pipeline (ONNX
/// Runtime, cv2.resize INTER_LINEAR, NumPy concatenate), and the tiled,
/// sampled and reordered forms against the whole-image export.
@Suite struct HypercolumnTests {
  static let folder = "hypercolumns"
  static let layers = ["block1", "block2", "block3", "pooled"]

  static func input() throws -> NDArray {
    try ImagePreprocessing().tensor(ImageFile.read(Fixtures.path(folder + "/input.png")))
  }

  static func export(_ graph: Graph, layers: [String], input: NDArray, options: HypercolumnOptions = HypercolumnOptions())
    throws -> NPYArray
  {
    let extractor = try HypercolumnExtractor(graph: graph, layers: layers, options: options)
    let plan = try extractor.plan(height: input.shape[2], width: input.shape[3], channels: input.shape[1])
    let path = Fixtures.scratchFolder() + "/out.npy"
    try extractor.export(input, plan: plan, to: path)
    return try NPY.read(path)
  }

  @Test func exportMatchesPythonPipeline() throws {
    let graph = try ONNXModel.load(Fixtures.path(Self.folder + "/net.onnx"))
    let ours = try Self.export(graph, layers: Self.layers, input: Self.input())
    let expected = try NPY.read(Fixtures.path(Self.folder + "/expected.npy"))
    #expect(ours.shape == expected.shape && ours.shape == [47, 61, 8 + 12 + 16 + 16])
    #expect(closeness(ours.tensor().scalars, expected.tensor().scalars, rtol: 0, atol: 1e-4).isClose)
  }

  /// The tiles `options` make of the 47x61 input (more than 4), after
  /// checking that their export equals the whole image's.
  static func tilesEqualTheWholeImage(_ options: HypercolumnOptions) throws -> HypercolumnPlan {
    let graph = try ONNXModel.load(Fixtures.path(folder + "/net.onnx"))
    let layers = ["block1", "block3", "block2"]
    let whole = try export(graph, layers: layers, input: input())
    let plan = try HypercolumnExtractor(graph: graph, layers: layers, options: options).plan(height: 47, width: 61, channels: 3)
    #expect(plan.tiles.count > 4)
    let tiled = try export(graph, layers: layers, input: input(), options: options)
    // Where vectors hold 8 floats the 8 -> 12 and 12 -> 16 convolutions run
    // as Winograd, whose tiles a crop places elsewhere on the map than the
    // whole image does: the same sums, rounded differently (up to 1.4e-6
    // here), well within Winograd's bound (5e-5 of the output's range).
    #expect(closeness(tiled.tensor().scalars, whole.tensor().scalars, rtol: 0, atol: 1e-5).isClose)
    return plan
  }

  @Test func tiledEqualsWholeImage() throws {
    var options = HypercolumnOptions()
    options.tile = 12
    _ = try Self.tilesEqualTheWholeImage(options)
  }

  /// Tiles chosen from the memory budget are evened out over each axis
  /// (no thin last tile), and still equal the whole image.
  @Test func budgetTilesAreEvenAndEqualTheWholeImage() throws {
    var options = HypercolumnOptions()
    options.memoryBudget = 40_000
    let plan = try Self.tilesEqualTheWholeImage(options)
    for (size, ranges) in [(47, plan.tiles.map(\.rows)), (61, plan.tiles.map(\.columns))] {
      let sides = Set(ranges.map(\.count)), step = ranges.map(\.count).max()!
      let count = (size + step - 1) / step
      #expect(sides.count <= 2 && size - (count - 1) * step >= step - plan.stride * count,
              "tile sides \(sides.sorted()) over \(size)")
    }
  }

  /// One extractor serves the jobs of a batch at once (the model is
  /// prepared once per command): images of two sizes exported together
  /// from several threads equal each exported alone.
  @Test func oneExtractorServesConcurrentJobs() throws {
    let graph = try ONNXModel.load(Fixtures.path(Self.folder + "/net.onnx"))
    let layers = ["block1", "block3", "block2"]
    let whole = try Self.input()
    let pixels = whole.toChannelsLast().storage!  // (1, 47, 61, 3)
    let (w, c) = (pixels.shape[2], pixels.shape[3])
    let values = (3..<40).flatMap { y in (5..<50).flatMap { x in (0..<c).map { pixels.scalars[(y * w + x) * c + $0] } } }
    let cropped = NDArray(channelsLast: Tensor(shape: [1, 37, 45, c], values: values))
    let inputs = [whole, cropped, whole, cropped]
    let alone = try inputs.map { try Self.export(graph, layers: layers, input: $0) }
    var options = HypercolumnOptions()
    options.threads = 1
    let shared = try HypercolumnExtractor(graph: graph, layers: layers, options: options)
    let folder = Fixtures.scratchFolder()
    let failures = Mutex<[String]>([])
    Parallel.run(inputs.count) { i in
      do {
        let input = inputs[i]
        let plan = try shared.plan(height: input.shape[2], width: input.shape[3], channels: input.shape[1])
        try shared.export(input, plan: plan, to: folder + "/\(i).npy")
      } catch {
        failures.withLock { $0.append("\(i): \(error)") }
      }
    }
    #expect(failures.withLock { $0 }.isEmpty)
    for i in inputs.indices { #expect(try NPY.read(folder + "/\(i).npy") == alone[i], "image \(i)") }
  }

  @Test func globalPoolingRefusesTiles() throws {
    let graph = try ONNXModel.load(Fixtures.path(Self.folder + "/net.onnx"))
    var options = HypercolumnOptions()
    options.tile = 16
    let extractor = try HypercolumnExtractor(graph: graph, layers: Self.layers, options: options)
    #expect(throws: HypercolumnError.notTileable(op: "GlobalAveragePool")) {
      try extractor.plan(height: 47, width: 61, channels: 3)
    }
  }

  @Test func sampledPixelsEqualTheFullExport() throws {
    let graph = try ONNXModel.load(Fixtures.path(Self.folder + "/net.onnx"))
    let input = try Self.input()
    let full = try Self.export(graph, layers: Self.layers, input: input).tensor()
    let extractor = try HypercolumnExtractor(graph: graph, layers: Self.layers)
    let plan = try extractor.plan(height: 47, width: 61, channels: 3)
    let pixels = [(x: 0, y: 0), (x: 60, y: 46), (x: 17, y: 33), (x: 60, y: 0)]
    let sampled = try extractor.sample(input, plan: plan, pixels: pixels)
    let c = plan.channels
    for (n, p) in pixels.enumerated() {
      let row = Array(sampled.scalars[(n * c)..<((n + 1) * c)])
      let expected = Array(full.scalars[((p.y * 61 + p.x) * c)..<((p.y * 61 + p.x + 1) * c)])
      #expect(row == expected)
    }
    #expect(throws: HypercolumnError.pixelOutside(x: 61, y: 0, width: 61, height: 47)) {
      try extractor.sample(input, plan: plan, pixels: [(x: 61, y: 0)])
    }
  }

  @Test func channelsFirstAndHalfPrecision() throws {
    let graph = try ONNXModel.load(Fixtures.path(Self.folder + "/net.onnx"))
    let hwc = try Self.export(graph, layers: Self.layers, input: Self.input()).tensor()
    var options = HypercolumnOptions()
    options.layout = .chw
    options.dtype = .f16
    let chw = try Self.export(graph, layers: Self.layers, input: Self.input(), options: options)
    #expect(chw.dtype == .float16 && chw.shape == [52, 47, 61])
    let values = chw.tensor().scalars, (h, w, c) = (47, 61, 52)
    var worst: Float = 0
    for k in 0..<c { for y in 0..<h { for x in 0..<w {
      let a = values[(k * h + y) * w + x], b = hwc.scalars[(y * w + x) * c + k]
      worst = max(worst, abs(a - b) / max(1, abs(b)))
    } } }
    #expect(worst <= 1e-3)  // float16 keeps 11 significant bits
  }

  @Test func alignCornersFollowsItsRule() throws {
    let graph = try ONNXModel.load(Fixtures.path(Self.folder + "/net.onnx"))
    let input = try Self.input()
    var options = HypercolumnOptions()
    options.alignment = .alignCorners
    let out = try Self.export(graph, layers: ["block3"], input: input, options: options).tensor()
    let executor = try Executor(graph: graph)
    let map = try executor.run(["image": input], outputs: ["block3"])["block3"]!  // (1, 16, 12, 16)
    let (mh, mw) = (map.shape[2], map.shape[3]), m = map.floatValues()
    // Output pixel (y, x) reads the map at y * (mh - 1) / (H - 1), x * (mw - 1) / (W - 1).
    for (y, x) in [(0, 0), (46, 60), (23, 30), (5, 41)] {
      let sy = Double(y) * Double(mh - 1) / 46, sx = Double(x) * Double(mw - 1) / 60
      let y0 = Int(sy), x0 = Int(sx), y1 = min(y0 + 1, mh - 1), x1 = min(x0 + 1, mw - 1)
      let fy = Float(sy - Double(y0)), fx = Float(sx - Double(x0))
      for k in 0..<16 {
        func at(_ r: Int, _ c: Int) -> Float { m[(k * mh + r) * mw + c] }
        let expected = (at(y0, x0) * (1 - fx) + at(y0, x1) * fx) * (1 - fy) + (at(y1, x0) * (1 - fx) + at(y1, x1) * fx) * fy
        #expect(abs(out.scalars[(y * 61 + x) * 16 + k] - expected) <= 1e-5)
      }
    }
  }

  @Test(arguments: [0.7, 1.0, 1.6])
  func filterBankMatchesSciPy(sigma: Double) throws {
    let image = try ImageFile.read(Fixtures.path(Self.folder + "/gray.png"))
    let input = try ImagePreprocessing.preset("default")!.tensor(image)
    let name = String(format: "sigma%.1f", sigma)
    let map = try Executor(graph: FilterBankModel.graph()).run(["image": input], outputs: [name], standardLayout: false)[name]!
    let ours = map.toChannelsLast().storage!.scalars
    let expected = try NPY.read(Fixtures.path(Self.folder + "/filterbank-\(name).npy")).tensor().scalars
    #expect(ours.count == expected.count)
    #expect(closeness(ours, expected, rtol: 0, atol: 1e-4).isClose)
  }

  @Test func filterBankTilesEqualTheWholeImage() throws {
    let image = try ImageFile.read(Fixtures.path(Self.folder + "/gray.png"))
    let input = try ImagePreprocessing.preset("default")!.tensor(image)
    let whole = try Self.export(FilterBankModel.graph(), layers: FilterBankModel.layerNames, input: input)
    var options = HypercolumnOptions()
    options.tile = 20
    let tiled = try Self.export(FilterBankModel.graph(), layers: FilterBankModel.layerNames, input: input, options: options)
    #expect(whole.shape == [64, 80, 30])
    #expect(closeness(tiled.tensor().scalars, whole.tensor().scalars, rtol: 0, atol: 1e-6).isClose)
  }

  /// A file read as tiles ask for its rows equals the image read whole:
  /// tiles of several sizes (so crops overlap, move down by less than
  /// their height, and skip rows in a sample), and a tile as large as
  /// the image.
  @Test(arguments: [12, 20, 64])
  func streamedFileEqualsWholeImage(tile: Int) throws {
    let graph = try ONNXModel.load(Fixtures.path(Self.folder + "/net.onnx"))
    let layers = ["block1", "block3", "block2"]
    let path = Fixtures.path(Self.folder + "/input.png")
    var options = HypercolumnOptions()
    options.tile = tile
    let extractor = try HypercolumnExtractor(graph: graph, layers: layers, options: options)
    let plan = try extractor.plan(height: 47, width: 61, channels: 3)
    let streamed = try HypercolumnInput.file(path, preparation: ImagePreprocessing())
    #expect(streamed.shape == [1, 3, 47, 61])
    let folder = Fixtures.scratchFolder()
    try extractor.export(Self.input(), plan: plan, to: folder + "/whole.npy")
    _ = try extractor.exportTimed(streamed, plan: plan, to: folder + "/streamed.npy")
    #expect(try NPY.read(folder + "/streamed.npy") == NPY.read(folder + "/whole.npy"))
    // A second pass (the preview's sample, then the export) reads the file again.
    let pixels = [(x: 60, y: 46), (x: 3, y: 40), (x: 30, y: 44)]
    #expect(try extractor.sample(streamed, plan: plan, pixels: pixels) == extractor.sample(Self.input(), plan: plan, pixels: pixels))
  }
}
