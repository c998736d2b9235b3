import AtrousCore
@testable import AtrousNN
import AtrousTestSupport
import Testing

/// A 1x1 Conv followed by an average pool, run with the pool first
/// (`GraphOptimizer.averageBeforePointwise`), against the two in the
/// model's order, unoptimized; and the graphs the rewrite must leave as
/// they are.
@Suite struct AverageBeforePointwiseTests {
  struct Case: Sendable, CustomStringConvertible {
    var cin: Int, cout: Int, group = 1, n = 1, size: Int, pixelsIn = false, bias = true
    var pool: String = "AveragePool"
    var poolAttributes: [String: Attribute] = [:]
    var description: String { "\(cin)->\(cout)/g\(group) n\(n) \(size)px pixels \(pixelsIn) bias \(bias) \(pool) \(poolAttributes)" }
  }

  static let cases: [Case] = [
    // DenseNet's transition: a 2x2 pool of stride 2, channels-last input.
    Case(cin: 24, cout: 12, size: 14, pixelsIn: true, poolAttributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
    // Planes in, two images, an odd map whose last row and column no
    // window reaches, two groups, no bias.
    Case(cin: 8, cout: 40, group: 2, n: 2, size: 9, bias: false,
         poolAttributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
    // Overlapping windows of 3 at stride 1, dilated along one axis,
    // count_include_pad set (no padding, so no effect).
    Case(cin: 16, cout: 33, size: 11, pixelsIn: true,
         poolAttributes: ["kernel_shape": .ints([3, 3]), "dilations": .ints([2, 1]), "count_include_pad": .int(1)]),
    // A global average: a classifier's head without a step between.
    Case(cin: 20, cout: 50, n: 2, size: 7, pixelsIn: true, pool: "GlobalAveragePool"),
    // Overlapping windows of 3 at stride 2 on an odd map (the last row and
    // column read by one window only), ceil mode given as off.
    Case(cin: 12, cout: 70, n: 1, size: 13, pixelsIn: true,
         poolAttributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "ceil_mode": .int(0)]),
    // A global average of planes, wider than the product's panels.
    Case(cin: 9, cout: 100, n: 3, size: 5, bias: false, pool: "GlobalAveragePool"),
  ]

  static func graph(_ c: Case, conv: [String: Attribute] = [:], pool: [String: Attribute]? = nil,
                    step: Bool = false) -> (Graph, [String: NDArray]) {
    let values = OpReferenceTests.values
    return FusionGraph.make(cin: c.cin, n: c.n, size: c.size, pixelsIn: c.pixelsIn, seeds: (41, 42)) { input in
      var nodes = [Node(name: "conv", opType: "Conv", inputs: [input, "w"] + (c.bias ? ["b"] : []), outputs: ["c"],
                        attributes: conv.merging(["group": .int(c.group)]) { a, _ in a })]
      if step { nodes.append(Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"])) }
      nodes.append(Node(name: "pool", opType: c.pool, inputs: [step ? "r" : "c"], outputs: ["y"],
                        attributes: pool ?? c.poolAttributes))
      var inits = ["w": NDArray(shape: [c.cout, c.cin / c.group, 1, 1], floats: values(c.cout * c.cin / c.group, 43))]
      if c.bias { inits["b"] = NDArray(shape: [c.cout], floats: values(c.cout, 44).map { $0 * 5 }) }
      return (nodes, inits)
    }
  }

  /// Every case on every instruction set, 1 and 2 threads: the pool runs
  /// first, the Conv makes "y", and the values are the model's order's to
  /// float rounding (the sums taken in another order).
  @Test(arguments: InstructionSet.available)
  func poolFirstEqualsPoolAfter(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for c in Self.cases {
        let (graph, input) = Self.graph(c)
        let expected = try Executor(graph: graph, threads: 1, optimize: false).run(input)["y"]!
        for threads in [1, 2] {
          let executor = try Executor(graph: graph, threads: threads)
          let ops = executor.optimized.nodes.map(\.opType)
          #expect(ops.suffix(2) == [c.pool, "Conv"], "\(c): \(ops)")
          #expect(executor.optimized.nodes.last?.outputs == ["y"], "\(c)")
          let y = try executor.run(input)["y"]!
          #expect(y.shape == expected.shape, "\(c)")
          let check = closeness(y.floatValues(), expected.floatValues(), rtol: 1e-5, atol: 1e-5)
          #expect(check.isClose, "\(c), \(threads) threads: \(check)")
        }
      }
    }
  }

  /// Where the two do not commute, or the Conv's output is wanted, the
  /// order stays: a padded pool (its zeros would meet the bias), ceil mode
  /// (windows past the edge), a step between, a padded or strided Conv, a
  /// max pool, and the Conv's output kept.
  @Test func leavesWhatDoesNotCommute() {
    let base = Self.cases[0]
    let window: [String: Attribute] = ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]
    var maxPool = base
    maxPool.pool = "MaxPool"
    let graphs: [(String, Graph)] = [
      ("padded pool", Self.graph(base, pool: window.merging(["pads": .ints([1, 1, 0, 0])]) { $1 }).0),
      ("same-padded pool", Self.graph(base, pool: window.merging(["auto_pad": .string("SAME_UPPER")]) { $1 }).0),
      ("ceil mode", Self.graph(base, pool: window.merging(["ceil_mode": .int(1)]) { $1 }).0),
      ("relu between", Self.graph(base, step: true).0),
      ("padded conv", Self.graph(base, conv: ["pads": .ints([1, 1, 1, 1])]).0),
      ("strided conv", Self.graph(base, conv: ["strides": .ints([2, 2])]).0),
      ("max pool", Self.graph(maxPool).0),
    ]
    for (label, graph) in graphs {
      let rewritten = GraphOptimizer.averageBeforePointwise(graph, keep: graph.outputs)
      #expect(rewritten.nodes.map(\.name) == graph.nodes.map(\.name), "\(label)")
      #expect(rewritten.nodes.map(\.inputs) == graph.nodes.map(\.inputs), "\(label)")
    }
    let graph = Self.graph(base).0
    let kept = GraphOptimizer.averageBeforePointwise(graph, keep: graph.outputs + ["c"])
    #expect(kept.nodes.map(\.inputs) == graph.nodes.map(\.inputs), "the Conv's output kept")
    let moved = GraphOptimizer.averageBeforePointwise(graph, keep: graph.outputs)
    #expect(moved.nodes.map(\.name) == ["pre", "pool", "conv"], "the rewrite itself")
  }
}
