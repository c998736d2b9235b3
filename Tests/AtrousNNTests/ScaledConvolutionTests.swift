import AtrousCore
@testable import AtrousNN
import Testing
import _CKernels

/// Squeeze-and-excitation blocks as PyTorch exports them (EfficientNet's,
/// MobileNetV3's): a map's global average through two 1x1 Convs and a
/// Sigmoid gates the map's channels (Mul), and a 1x1 Conv projects the
/// gated map, its sum with a residual added where the block has one. The
/// Mul runs as part of the projection (`ScaledConvolution`): by scaling
/// the weights where the map is large, else before it; the same values as
/// the ops one by one, on every instruction set.
@Suite struct ScaledConvolutionTests {
  static func values(_ count: Int, seed: Int) -> [Float] { OpReferenceTests.values(count, seed: seed) }

  struct Case: CustomStringConvertible, Sendable {
    var images = 1, channels = 24, size = 12, cout = 16
    /// Mul(gates, map), as torchvision writes it, or Mul(map, gates).
    var gatesFirst = true
    /// A residual Add after the projection (cout == channels).
    var residual = false
    /// The average as ReduceMean over H and W (keeping them) instead of
    /// GlobalAveragePool.
    var reduceMean = false
    var description: String {
      "\(images)x\(channels)x\(size)x\(size) -> \(cout)\(gatesFirst ? "" : ", map first")\(residual ? ", residual" : "")"
        + (reduceMean ? ", ReduceMean" : "")
    }
  }

  static func graph(_ c: Case) -> (Graph, [String: NDArray]) {
    let (ch, squeezed) = (c.channels, max(1, c.channels / 4))
    let inits: [String: NDArray] = [
      "w0": NDArray(shape: [ch, 3, 1, 1], floats: values(3 * ch, seed: 70)),
      "w1": NDArray(shape: [squeezed, ch, 1, 1], floats: values(squeezed * ch, seed: 71)),
      "b1": NDArray(shape: [squeezed], floats: values(squeezed, seed: 72)),
      "w2": NDArray(shape: [ch, squeezed, 1, 1], floats: values(ch * squeezed, seed: 73)),
      "b2": NDArray(shape: [ch], floats: values(ch, seed: 74)),
      "w3": NDArray(shape: [c.cout, ch, 1, 1], floats: values(c.cout * ch, seed: 75)),
      "b3": NDArray(shape: [c.cout], floats: values(c.cout, seed: 76)),
    ]
    var nodes = [
      Node(name: "map", opType: "Conv", inputs: ["x", "w0"], outputs: ["map"]),
      c.reduceMean
        ? Node(name: "pool", opType: "ReduceMean", inputs: ["map"], outputs: ["pooled"], attributes: ["axes": .ints([2, 3])])
        : Node(name: "pool", opType: "GlobalAveragePool", inputs: ["map"], outputs: ["pooled"]),
      Node(name: "fc1", opType: "Conv", inputs: ["pooled", "w1", "b1"], outputs: ["fc1"]),
      Node(name: "relu", opType: "Relu", inputs: ["fc1"], outputs: ["relu"]),
      Node(name: "fc2", opType: "Conv", inputs: ["relu", "w2", "b2"], outputs: ["fc2"]),
      Node(name: "gate", opType: "Sigmoid", inputs: ["fc2"], outputs: ["gates"]),
      Node(name: "mul", opType: "Mul", inputs: c.gatesFirst ? ["gates", "map"] : ["map", "gates"], outputs: ["gated"]),
      Node(name: "project", opType: "Conv", inputs: ["gated", "w3", "b3"], outputs: [c.residual ? "projected" : "y"]),
    ]
    if c.residual { nodes.append(Node(name: "sum", opType: "Add", inputs: ["projected", "map"], outputs: ["y"])) }
    let shape = [c.images, 3, c.size, c.size]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: shape)], outputs: ["y"],
                      opset: 17)
    return (graph, ["x": NDArray(shape: shape, floats: values(shape.reduce(1, *), seed: 77))])
  }

  static let cases: [Case] = [
    Case(),  // 144 pixels, 16 output channels
    Case(gatesFirst: false),
    Case(channels: 40, size: 12, cout: 40, residual: true),
    Case(channels: 24, size: 7, cout: 16),  // 49 pixels
    Case(images: 2),  // gates per image
    Case(channels: 48, size: 15, cout: 24, reduceMean: true),
    Case(channels: 48, size: 15, cout: 24, gatesFirst: false, reduceMean: true),
  ]

  /// Whether the projection scales its weights: one image, and its output
  /// channels in whole panels (32) under half its pixels; else the Mul
  /// runs first.
  static func scalesWeights(_ c: Case) -> Bool {
    let panel = atr_packed_b_size(1, 1)
    return c.images == 1 && 2 * ((c.cout + panel - 1) / panel * panel) < c.size * c.size
  }

  @Test(arguments: InstructionSet.available)
  func gatedProjectionMatchesTheOpsOneByOne(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for c in Self.cases {
        let scalesWeights = Self.scalesWeights(c)
        let (graph, input) = Self.graph(c)
        let expected = try Executor(graph: graph, threads: 1, optimize: false).run(input)["y"]!
        for threads in [1, 2] {
          let fused = try Executor(graph: graph, threads: threads)
          #expect(!fused.optimized.nodes.contains { $0.opType == "Mul" }, "\(c)")
          let run = try fused.profiledRun(input)
          let path = run.nodes.first { $0.name == "project" || $0.name == "sum" }?.path ?? ""
          #expect(path.hasPrefix(scalesWeights ? "scaled-weights," : "mul,"), "\(c): \(path)")
          let y = run.values["y"]!
          #expect(y.shape == expected.shape)
          let worst = zip(y.floatValues(), expected.floatValues()).map { abs($0 - $1) / (abs($1) + 1) }.max() ?? 1
          #expect(worst <= 1e-5, "\(isa) \(c), \(threads) threads: \(worst)")
        }
      }
    }
  }

  /// Gates not made from the map's average (a Mul of two maps) leave the
  /// Mul as it is.
  @Test func mulOfTwoMapsStays() throws {
    var (graph, _) = Self.graph(Case())
    graph.nodes[6].inputs = ["map", "map"]
    #expect(try Executor(graph: graph).optimized.nodes.contains { $0.opType == "Mul" })
  }
}
