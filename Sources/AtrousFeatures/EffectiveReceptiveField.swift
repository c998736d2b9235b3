import AtrousCore
import AtrousIO
import AtrousNN
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How strongly each input pixel influences one unit of a layer (Luo et
/// al. 2016): the magnitude of the gradient of the unit, summed over the
/// layer's channels, with respect to the input, summed over the input's
/// channels (|.| per channel) and averaged over the inputs measured.
///
/// Inside the theoretical receptive field, the influence falls off
/// roughly like a Gaussian: the effective field is a fraction of the
/// theoretical one. `radius(holding:)` states how much.
public struct EffectiveReceptiveField: Sendable {
  /// (H, W): the mean gradient magnitude per input pixel.
  public var magnitude: Tensor
  public var layer: String
  /// The layer's shape, (1, C, h, w), and the unit measured.
  public var layerShape: [Int]
  public var unit: (row: Int, column: Int)
  /// The layer's theoretical field.
  public var field: ReceptiveField
  /// Inputs the gradients were averaged over.
  public var samples: Int

  /// The unit's theoretical field in input pixels (pixel centres at 0.5):
  /// its centre (x, y) and box (x0, y0, x1, y1).
  public var region: (centre: (x: Double, y: Double), box: (Double, Double, Double, Double)) {
    field.region(x: unit.column, y: unit.row)
  }

  /// Measures the gradient at each of `inputs` ((1, C, H, W)).
  /// - Throws: `GradientError`, `HypercolumnError.unknownLayer` and the
  ///   model's errors.
  public static func measure(graph: Graph, layer: String, inputs: [NDArray], threads: Int = Parallel.coreCount) throws
    -> EffectiveReceptiveField
  {
    if let problem = InputGradient.problem(graph: graph, layer: layer) { throw problem }
    return try measure(executor: Executor(graph: graph, threads: threads), layer: layer, inputs: inputs, threads: threads)
  }

  /// `measure` through an executor already prepared, shared by the layers
  /// measured; `keep` as `InputGradient` takes it.
  public static func measure(executor: Executor, layer: String, inputs: [NDArray], keep: [String]? = nil,
                             threads: Int = Parallel.coreCount) throws -> EffectiveReceptiveField {
    precondition(!inputs.isEmpty, "at least one input")
    let graph = executor.graph
    let gradient = try InputGradient(executor: executor, layer: layer, keep: keep, threads: threads)
    let shape = inputs[0].shape
    let summary = try NetworkSummary(graph: graph, inputShapes: [gradient.inputName: shape])
    try InputGradient.checkMemory(summary, inputShape: shape, inputs: 0)
    let (c, h, w) = (shape[1], shape[2], shape[3])
    var sum = [Double](repeating: 0, count: h * w)
    var layerShape: [Int] = [], unit = (row: 0, column: 0)
    for input in inputs {
      let (g, s, u) = try gradient.gradient(at: input)
      (layerShape, unit) = (s, u)
      g.withUnsafeBufferPointer { values in
        for k in 0..<c { for i in 0..<(h * w) { sum[i] += Double(abs(values[k * h * w + i])) } }
      }
    }
    let field = layer == gradient.inputName ? ReceptiveField.input
      : summary.layers.first { $0.name == layer }?.receptiveField ?? .input
    let count = Double(inputs.count)
    return EffectiveReceptiveField(magnitude: Tensor(shape: [h, w], values: sum.map { Float($0 / count) }), layer: layer,
                                   layerShape: layerShape, unit: unit, field: field, samples: inputs.count)
  }

  /// `count` seeded inputs of `shape` ((1, C, H, W)), standard normal.
  public static func randomInputs(shape: [Int], count: Int, seed: UInt64) -> [NDArray] {
    var random = SeededRandom(seed: seed)
    let size = shape.reduce(1, *)
    return (0..<count).map { _ in
      NDArray(shape: shape, floats: (0..<size).map { _ in
        // Box-Muller.
        let u = Float.random(in: Float.ulpOfOne...1, using: &random), v = Float.random(in: 0...1, using: &random)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
      })
    }
  }

  /// The graph with Luo et al.'s uniform weights: every convolution's
  /// weights 1 / (taps a output sums), biases 0, batch norms the identity.
  public static func uniformWeights(_ graph: Graph) -> Graph {
    var out = graph
    for node in graph.nodes {
      switch node.opType {
      case "Conv", "ConvTranspose":
        guard node.inputs.count > 1, let weight = graph.initializers[node.inputs[1]], weight.shape.count == 4 else { continue }
        var groups = 1
        if case .int(let g)? = node.attributes["group"] { groups = g }
        let taps = weight.shape[2] * weight.shape[3] * (node.opType == "Conv" ? weight.shape[1] : weight.shape[0] / groups)
        out.initializers[node.inputs[1]] = NDArray(shape: weight.shape, floats: [Float](repeating: 1 / Float(taps),
                                                                                        count: weight.shape.reduce(1, *)))
        if node.inputs.count > 2, let bias = graph.initializers[node.inputs[2]] {
          out.initializers[node.inputs[2]] = NDArray(shape: bias.shape, floats: [Float](repeating: 0, count: bias.shape.reduce(1, *)))
        }
      case "BatchNormalization":
        for (index, value) in [(1, Float(1)), (2, 0), (3, 0), (4, 1)] where index < node.inputs.count {
          guard let old = graph.initializers[node.inputs[index]] else { continue }
          out.initializers[node.inputs[index]] = NDArray(shape: old.shape, floats: [Float](repeating: value,
                                                                                           count: old.shape.reduce(1, *)))
        }
      default: continue
      }
    }
    return out
  }

  /// The input's pixel centres (x + 0.5, y + 0.5) by distance from the
  /// theoretical field's centre, with their magnitudes.
  private var byDistance: [(distance: Double, mass: Double)] {
    let (h, w) = (magnitude.shape[0], magnitude.shape[1])
    let centre = region.centre
    let values = magnitude.scalars
    return (0..<(h * w)).map { i -> (Double, Double) in
      let (dx, dy) = (Double(i % w) + 0.5 - centre.x, Double(i / w) + 0.5 - centre.y)
      return ((dx * dx + dy * dy).squareRoot(), Double(values[i]))
    }.sorted { $0.0 < $1.0 }
  }

  /// The smallest radius, in input pixels from the theoretical field's
  /// centre, of the disc holding `fraction` of the magnitude (0 when
  /// there is none).
  public func radius(holding fraction: Double) -> Double {
    let sorted = byDistance
    let total = sorted.reduce(0) { $0 + $1.mass }
    guard total > 0 else { return 0 }
    var sum = 0.0
    for (distance, mass) in sorted {
      sum += mass
      if sum >= fraction * total * (1 - 1e-12) { return distance }
    }
    return sorted.last!.distance
  }

  /// The share of the magnitude on input pixels whose centres lie inside
  /// the theoretical field.
  public var shareInsideField: Double {
    let (h, w) = (magnitude.shape[0], magnitude.shape[1])
    let box = region.box
    let values = magnitude.scalars
    var inside = 0.0, total = 0.0
    for y in 0..<h {
      for x in 0..<w {
        let v = Double(values[y * w + x])
        total += v
        let (cx, cy) = (Double(x) + 0.5, Double(y) + 0.5)
        if cx > box.0 && cx < box.2 && cy > box.1 && cy < box.3 { inside += v }
      }
    }
    return total > 0 ? inside / total : 1
  }

  /// The input window around the theoretical field: its box widened by a
  /// quarter of its size (at least 2 pixels) each way, within the input.
  public var window: (rows: Range<Int>, columns: Range<Int>) {
    let (h, w) = (magnitude.shape[0], magnitude.shape[1])
    let box = region.box
    let (mx, my) = (max(2, (box.2 - box.0) / 4), max(2, (box.3 - box.1) / 4))
    let rows = max(0, Int((box.1 - my).rounded(.down)))..<min(h, Int((box.3 + my).rounded(.up)))
    let columns = max(0, Int((box.0 - mx).rounded(.down)))..<min(w, Int((box.2 + mx).rounded(.up)))
    return (rows.isEmpty ? 0..<h : rows, columns.isEmpty ? 0..<w : columns)
  }

  /// The magnitude as a heatmap (its maximum brightest) of the input's
  /// `rows` and `columns` (default: all of it), each input pixel drawn
  /// `scale` pixels wide, with the theoretical field's box outlined in
  /// white where it lies inside the picture.
  public func picture(colormap: Colormap = .inferno, scale: Int = 1, rows: Range<Int>? = nil, columns: Range<Int>? = nil)
    -> Image
  {
    let w = magnitude.shape[1]
    let (rows, columns) = (rows ?? 0..<magnitude.shape[0], columns ?? 0..<w)
    let values = magnitude.scalars
    let peak = values.max() ?? 0
    let table = colormap.table
    let (width, height) = (columns.count * scale, rows.count * scale)
    var samples = [UInt8](repeating: 0, count: width * height * 3)  // (H', W', 3)
    for y in 0..<height {
      for x in 0..<width {
        let v = peak > 0 ? values[(rows.lowerBound + y / scale) * w + columns.lowerBound + x / scale] / peak : 0
        let level = Int((v * 255).rounded())
        for k in 0..<3 { samples[(y * width + x) * 3 + k] = table[level * 3 + k] }
      }
    }
    let box = region.box
    func place(_ v: Double, _ origin: Int) -> Int { Int(((v - Double(origin)) * Double(scale)).rounded()) }
    let (x0, y0) = (place(box.0, columns.lowerBound), place(box.1, rows.lowerBound))
    let (x1, y1) = (place(box.2, columns.lowerBound) - 1, place(box.3, rows.lowerBound) - 1)
    func mark(_ x: Int, _ y: Int) {
      guard x >= 0, y >= 0, x < width, y < height else { return }
      for k in 0..<3 { samples[(y * width + x) * 3 + k] = 255 }
    }
    for x in max(0, x0)...max(0, min(width - 1, x1)) { mark(x, y0); mark(x, y1) }
    for y in max(0, y0)...max(0, min(height - 1, y1)) { mark(x0, y); mark(x1, y) }
    return Image(width: width, height: height, format: .rgb, samples: samples)
  }
}
