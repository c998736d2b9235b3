import AtrousCore
import AtrousNN
import AtrousTestSupport
import Foundation
import Testing

/// The input gradient of a unit against central finite differences of the
/// executor's forward pass, per op; the uniform-weight stack against the
/// n-fold convolution of its kernel (Luo et al. 2016); and the gradient's
/// support against the theoretical receptive field.
@Suite struct InputGradientTests {
  /// A seeded input, (1, C, H, W), values in -1...1.
  static func input(channels: Int, height: Int, width: Int, seed: UInt64 = 3) -> NDArray {
    var random = SeededRandom(seed: seed)
    return NDArray(shape: [1, channels, height, width],
                   floats: (0..<(channels * height * width)).map { _ in Float.random(in: -1...1, using: &random) })
  }

  /// The sum over channels of the layer's value at `unit`.
  static func unitSum(_ executor: Executor, _ layer: String, _ input: NDArray, unit: (Int, Int)) throws -> Double {
    let value = try executor.run([executor.inputNames[0]: input], outputs: [layer])[layer]!
    let (c, h, w) = (value.shape[1], value.shape[2], value.shape[3])
    let values = value.floatValues()
    return (0..<c).reduce(0.0) { $0 + Double(values[($1 * h + unit.0) * w + unit.1]) }
  }

  /// Every input element's gradient against (f(x + e) - f(x - e)) / 2e.
  static func checkAgainstFiniteDifferences(_ graph: Graph, layer: String, input: NDArray, step: Float = 1e-2,
                                            tolerance: Double = 2e-3) throws {
    let gradient = try InputGradient(graph: graph, layer: layer, threads: 2)
    let (analytic, _, unit) = try gradient.gradient(at: input)
    let executor = try Executor(graph: graph, threads: 1)
    var values = input.floatValues()
    let scale = max(1e-3, analytic.scalars.map { Double(abs($0)) }.max()!)
    var worst = 0.0
    for i in values.indices {
      let original = values[i]
      values[i] = original + step
      let up = try unitSum(executor, layer, NDArray(shape: input.shape, floats: values), unit: unit)
      values[i] = original - step
      let down = try unitSum(executor, layer, NDArray(shape: input.shape, floats: values), unit: unit)
      values[i] = original
      worst = max(worst, abs((up - down) / Double(2 * step) - Double(analytic.scalars[i])))
    }
    #expect(worst <= tolerance * scale, "\(layer): worst difference \(worst) against gradients up to \(scale)")
  }

  @Test func convolutionsOfEveryKind() throws {
    var net = NetworkBuilder(channels: 4, seed: 5)
    let plain = net.relu(net.conv2D(net.input, filters: 4, kernel: 3, padding: .explicit(1)))
    let strided = net.conv2D(plain, filters: 6, kernel: 3, stride: 2, padding: .explicit(2), dilation: 2, groups: 2)
    let depthwise = net.depthwiseConv2D(strided, kernel: 3, padding: .same)
    let transposed = net.conv2DTranspose(depthwise, filters: 3, kernel: 3, stride: 2, padding: 1, outputPadding: 1, name: "up")
    for layer in [plain, strided, depthwise, transposed] {
      try Self.checkAgainstFiniteDifferences(net.graph(outputs: [layer]), layer: layer,
                                             input: Self.input(channels: 4, height: 11, width: 12), step: 1e-3)
    }
  }

  @Test func poolingNormalizationResidualsAndConcat() throws {
    var weights: [String: NDArray] = [:]
    weights["bn.scale"] = NDArray(shape: [5], floats: [0.5, 2, -1, 1.5, 0.8])
    weights["bn.var"] = NDArray(shape: [5], floats: [0.3, 4, 1, 0.1, 2])
    weights["bn.mean"] = NDArray(shape: [5], floats: [0.1, -0.2, 0.3, 0, 0.5])
    var net = NetworkBuilder(channels: 3, weights: weights, seed: 9)
    let a = net.conv2D(net.input, filters: 5, kernel: 3, padding: .same)
    let b = net.relu(net.batchNorm(a, name: "bn"))
    let pooled = net.maxPool(b, size: 3, stride: 2, padding: 1)
    let averaged = net.averagePool(b, size: 3, stride: 2, padding: 1)
    let sum = net.add(pooled, averaged)
    let joined = net.concat([sum, pooled])
    let out = net.conv2D(joined, filters: 2, kernel: 1)
    try Self.checkAgainstFiniteDifferences(net.graph(outputs: [out]), layer: out,
                                           input: Self.input(channels: 3, height: 10, width: 9))
  }

  @Test(arguments: [true, false])
  func resize(bilinear: Bool) throws {
    var net = NetworkBuilder(channels: 2, seed: 4)
    let a = net.conv2D(net.input, filters: 3, kernel: 3, stride: 2, padding: .same)
    let up = net.upsample(a, factor: 2, bilinear: bilinear)
    let out = net.conv2D(up, filters: 2, kernel: 3, padding: .same)
    try Self.checkAgainstFiniteDifferences(net.graph(outputs: [out]), layer: out,
                                           input: Self.input(channels: 2, height: 9, width: 10))
  }

  /// Element-wise ops with broadcast constants, and a Constant node's
  /// value standing in for a weight (as exported PaddleOCR models have it).
  @Test func elementWiseOpsAndConstantNodes() throws {
    var random = SeededRandom(seed: 6)
    let weight = NDArray(shape: [3, 2, 3, 3], floats: (0..<54).map { _ in Float.random(in: -0.5...0.5, using: &random) })
    let nodes = [
      Node(name: "w", opType: "Constant", inputs: [], outputs: ["w"], attributes: ["value": .tensor(weight)]),
      Node(name: "conv", opType: "Conv", inputs: ["input", "w"], outputs: ["conv"], attributes: ["pads": .ints([1, 1, 1, 1])]),
      Node(name: "gate", opType: "HardSigmoid", inputs: ["conv"], outputs: ["gate"], attributes: ["alpha": .float(0.3)]),
      Node(name: "swish", opType: "Mul", inputs: ["conv", "gate"], outputs: ["swish"]),
      Node(name: "clip", opType: "Clip", inputs: ["swish", "low", "high"], outputs: ["clip"]),
      Node(name: "scaled", opType: "Div", inputs: ["clip", "divisor"], outputs: ["scaled"]),
      Node(name: "soft", opType: "Sigmoid", inputs: ["scaled"], outputs: ["soft"]),
      Node(name: "shift", opType: "Sub", inputs: ["soft", "swish"], outputs: ["shift"]),
      Node(name: "root", opType: "Sqrt", inputs: ["gate"], outputs: ["root"]),
      Node(name: "out", opType: "Add", inputs: ["shift", "root"], outputs: ["out"]),
    ]
    let initializers: [String: NDArray] = [
      "low": NDArray(shape: [], floats: [-0.4]), "high": NDArray(shape: [], floats: [0.6]),
      "divisor": NDArray(shape: [1, 3, 1, 1], floats: [0.5, 2, -1.5]),
    ]
    let graph = Graph(nodes: nodes, initializers: initializers, inputs: [Graph.Input(name: "input", shape: [1, 2, nil, nil])],
                      outputs: ["out"], opset: 17)
    try Self.checkAgainstFiniteDifferences(graph, layer: "out", input: Self.input(channels: 2, height: 7, width: 8), step: 1e-3)
  }

  /// The built-in filter bank: reflect padding, separable convolutions,
  /// squares, square roots, differences and average pooling.
  @Test func filterBank() throws {
    let graph = FilterBankModel.graph()
    try Self.checkAgainstFiniteDifferences(graph, layer: "sigma1.0", input: Self.input(channels: 1, height: 12, width: 12),
                                           step: 1e-2, tolerance: 5e-3)
  }

  /// n stacked k x k convolutions of uniform weights 1 / k^2 and no
  /// nonlinearity: the gradient is the outer product of the n-fold
  /// convolution of [1/k, ..., 1/k] with itself (Luo et al. 2016: the
  /// binomial distribution for k = 2, tending to a Gaussian).
  @Test(arguments: [(2, 6), (3, 4)])
  func uniformStackGivesTheConvolvedProfile(kernel: Int, layers: Int) throws {
    var weights: [String: NDArray] = [:]
    for i in 0..<layers {
      weights["c\(i).weight"] = NDArray(shape: [1, 1, kernel, kernel],
                                        floats: [Float](repeating: 1 / Float(kernel * kernel), count: kernel * kernel))
    }
    var net = NetworkBuilder(channels: 1, weights: weights)
    var x = net.input
    for i in 0..<layers { x = net.conv2D(x, filters: 1, kernel: kernel, bias: false, name: "c\(i)") }
    let side = layers * (kernel - 1) + 5
    let (g, shape, unit) = try InputGradient(graph: net.graph(outputs: [x]), layer: x)
      .gradient(at: Self.input(channels: 1, height: side, width: side))
    var profile = [1.0]
    for _ in 0..<layers {
      var next = [Double](repeating: 0, count: profile.count + kernel - 1)
      for (i, v) in profile.enumerated() { for t in 0..<kernel { next[i + t] += v / Double(kernel) } }
      profile = next
    }
    if kernel == 2 {
      // Binomial coefficients over 2^n.
      let binomial = (0...layers).map { k in (0..<k).reduce(1.0) { $0 * Double(layers - $1) / Double($1 + 1) } / pow(2, Double(layers)) }
      #expect(zip(profile, binomial).allSatisfy { abs($0 - $1) < 1e-12 })
    }
    #expect(shape == [1, 1, side - layers * (kernel - 1), side - layers * (kernel - 1)])
    for y in 0..<side {
      for x in 0..<side {
        let (i, j) = (y - unit.row, x - unit.column)
        let expected = (0..<profile.count).contains(i) && (0..<profile.count).contains(j) ? profile[i] * profile[j] : 0
        #expect(abs(Double(g.scalars[y * side + x]) - expected) < 1e-6, "(\(y), \(x))")
      }
    }
  }

  /// Strided, dilated and pooled layers: every input the gradient touches
  /// lies inside the unit's theoretical field, as `inspect` reports it.
  @Test func supportStaysInsideTheTheoreticalField() throws {
    var net = NetworkBuilder(channels: 2, seed: 8)
    var x = net.relu(net.conv2D(net.input, filters: 4, kernel: 3, stride: 2, padding: .same))
    x = net.relu(net.conv2D(x, filters: 4, kernel: 3, padding: .same, dilation: 2))
    x = net.maxPool(x, size: 2)
    x = net.conv2D(x, filters: 3, kernel: 5, padding: .same)
    let graph = net.graph(outputs: [x])
    let (h, w) = (48, 44)
    let summary = try NetworkSummary(graph: graph, inputShapes: ["input": [1, 2, h, w]])
    let field = summary.layers.first { $0.name == x }!.receptiveField
    let (g, _, unit) = try InputGradient(graph: graph, layer: x).gradient(at: Self.input(channels: 2, height: h, width: w))
    let box = field.region(x: unit.column, y: unit.row).box
    var touched = 0
    for c in 0..<2 {
      for y in 0..<h {
        for xx in 0..<w where g.scalars[(c * h + y) * w + xx] != 0 {
          touched += 1
          // Pixel centres at +0.5 lie inside the box.
          #expect(Double(xx) + 0.5 > box.0 && Double(y) + 0.5 > box.1 && Double(xx) + 0.5 < box.2 && Double(y) + 0.5 < box.3,
                  "input (\(y), \(xx)) outside the field \(box)")
        }
      }
    }
    #expect(touched > 100)
  }

  @Test func unsupportedOpsAreNamed() throws {
    let graph = Graph(nodes: [Node(name: "soft", opType: "Softmax", inputs: ["input"], outputs: ["y"])], initializers: [:],
                      inputs: [Graph.Input(name: "input", shape: [1, 1, 4, 4])], outputs: ["y"], opset: 17)
    #expect(throws: GradientError.unsupported(op: "Softmax", node: "soft")) { try InputGradient(graph: graph, layer: "y") }
    #expect(throws: GradientError.unknownLayer("z")) { try InputGradient(graph: graph, layer: "z") }
  }
}
