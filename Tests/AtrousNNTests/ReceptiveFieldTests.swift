import AtrousIO
import AtrousNN
import AtrousTestSupport
import Testing

/// Receptive fields and parameter counts against the seed notes.
@Suite struct ReceptiveFieldTests {
  /// The AlexNet table of the seed notes, exactly: (n, jump, size, start).
  @Test func alexNetTable() throws {
    var net = NetworkBuilder(channels: 3)
    var x = net.input
    let layers: [(String, Int, Int, Int, Bool)] = [
      ("conv1", 11, 4, 0, true), ("pool1", 3, 2, 0, false), ("conv2", 5, 1, 2, true), ("pool2", 3, 2, 0, false),
      ("conv3", 3, 1, 1, true), ("conv4", 3, 1, 1, true), ("conv5", 3, 1, 1, true), ("pool5", 3, 2, 0, false),
      ("fc6-conv", 6, 1, 0, true), ("fc7-conv", 1, 1, 0, true),
    ]
    for (name, k, s, p, conv) in layers {
      x = conv ? net.conv2D(x, filters: 4, kernel: k, stride: s, padding: .explicit(p), name: name)
        : net.maxPool(x, size: k, stride: s, padding: p, name: name)
    }
    let summary = try NetworkSummary(graph: net.graph(outputs: [x]), inputShapes: ["input": [1, 3, 227, 227]])
    let expected: [(Int, Double, Double, Double)] = [
      (55, 4, 11, 5.5), (27, 8, 19, 9.5), (27, 8, 51, 9.5), (13, 16, 67, 17.5), (13, 16, 99, 17.5),
      (13, 16, 131, 17.5), (13, 16, 163, 17.5), (6, 32, 195, 33.5), (1, 32, 355, 113.5), (1, 32, 355, 113.5),
    ]
    #expect(summary.layers.map(\.name) == layers.map(\.0))
    for (layer, (n, jump, size, start)) in zip(summary.layers, expected) {
      #expect(layer.outputShape[2] == n && layer.outputShape[3] == n, "\(layer.name)")
      #expect(layer.receptiveField == ReceptiveField(size: [size, size], jump: [jump, jump], start: [start, start]),
              "\(layer.name)")
    }
    // The seed's query: pool5 feature (3, 3) is centred at 33.5 + 3 * 32.
    let region = summary.layers[7].receptiveField.region(x: 3, y: 3)
    #expect(region.centre.x == 129.5 && region.centre.y == 129.5)
    #expect(region.box.0 == 32 && region.box.2 == 227)
  }

  @Test func depthwiseSeparableNeedsFewerParameters() throws {
    var separable = NetworkBuilder(channels: 16)
    let d = separable.depthwiseConv2D(separable.input, kernel: 3, bias: false)
    let p = separable.conv2D(d, filters: 32, kernel: 1, bias: false)
    var standard = NetworkBuilder(channels: 16)
    let s = standard.conv2D(standard.input, filters: 32, kernel: 3, padding: .same, bias: false)
    let shapes = ["input": [1, 16, 8, 8]]
    #expect(try NetworkSummary(graph: separable.graph(outputs: [p]), inputShapes: shapes).totalParameters == 656)
    #expect(try NetworkSummary(graph: standard.graph(outputs: [s]), inputShapes: shapes).totalParameters == 4608)
  }

  @Test func dilatedStackGrowsExponentially() throws {
    var net = NetworkBuilder(channels: 1)
    var x = net.input
    for d in [1, 2, 4] { x = net.conv2D(x, filters: 1, kernel: 3, padding: .same, dilation: d) }
    let summary = try NetworkSummary(graph: net.graph(outputs: [x]), inputShapes: ["input": [1, 1, 32, 32]])
    #expect(summary.layers.map { $0.receptiveField.size[0] } == [3, 7, 15])
    #expect(summary.layers.map { $0.receptiveField.jump[0] } == [1, 1, 1])
    #expect(summary.layers.allSatisfy { $0.outputShape == [1, 1, 32, 32] })
  }

  @Test func mergesTakeTheLargestFieldAndUpsamplingDividesTheJump() throws {
    var net = NetworkBuilder(channels: 2)
    let small = net.conv2D(net.input, filters: 2, kernel: 3, padding: .same)
    let down = net.maxPool(small, size: 2)
    let big = net.conv2D(down, filters: 2, kernel: 3, padding: .same)
    let up = net.upsample(big, factor: 2)
    let sum = net.add(small, up)
    let both = net.concat([small, up])
    let summary = try NetworkSummary(graph: net.graph(outputs: [sum, both]), inputShapes: ["input": [1, 2, 16, 16]])
    let byName = Dictionary(uniqueKeysWithValues: summary.layers.map { ($0.name, $0.receptiveField) })
    #expect(byName[big]!.size == [8, 8] && byName[big]!.jump == [2, 2])  // 3, then 3 + 1 (pool), then 4 + 2 * 2
    #expect(byName[up]!.jump == [1, 1])
    #expect(byName[up]!.size == [10, 10])  // bilinear adds one input step (2)
    #expect(byName[sum]! == byName[up]!)
    #expect(byName[both]! == byName[up]!)
  }

  @Test func macsAndPeakMemory() throws {
    var net = NetworkBuilder(channels: 3)
    let a = net.conv2D(net.input, filters: 8, kernel: 3, padding: .same)
    let summary = try NetworkSummary(graph: net.graph(outputs: [a]), inputShapes: ["input": [1, 3, 10, 10]])
    #expect(summary.totalMACs == 10 * 10 * 8 * 3 * 3 * 3)
    #expect(summary.totalParameters == 8 * 3 * 9 + 8)
    #expect(summary.peakActivationBytes == (3 * 100 + 8 * 100) * 4)
  }
}

@Suite struct NetworkWeightsTests {
  /// numpy.savez (stored) and savez_compressed (deflated) archives give the
  /// arrays numpy wrote, and the builder uses them.
  @Test(arguments: ["weights.npz", "weights_compressed.npz"])
  func builderTakesWeightsFromNpz(file: String) throws {
    let weights = try NetworkWeights.load(Fixtures.path("npz/\(file)"))
    #expect(Set(weights.keys) == ["conv1.weight", "conv1.bias"])
    #expect(weights["conv1.weight"]!.shape == [4, 3, 3, 3])
    #expect(weights["conv1.weight"]!.floatValues() == (0..<108).map { (Float($0) - 54) / 100 })
    #expect(weights["conv1.bias"]!.floatValues() == [0.5, -0.25, 0, 1])
    var net = NetworkBuilder(channels: 3, weights: weights)
    let y = net.conv2D(net.input, filters: 4, kernel: 3, name: "conv1")
    let graph = net.graph(outputs: [y])
    #expect(graph.initializers["conv1.weight"]!.floatValues() == weights["conv1.weight"]!.floatValues())
  }

  @Test func corruptArchivesFail() throws {
    let bytes = try Fixtures.bytes("npz/weights_compressed.npz")
    for cut in [0, 10, bytes.count / 2, bytes.count - 1] {
      #expect(throws: (any Error).self, "cut at \(cut)") { try NPZ.decode(Array(bytes.prefix(cut))) }
    }
  }
}
