import AtrousCore
@testable import AtrousNN
import AtrousTestSupport
import Testing

/// A residual Add fused into the convolution before it
/// (`ResidualConvolution`) against the two run one after the other,
/// unoptimized, on the same convolution kernel.
@Suite struct ResidualConvolutionTests {
  /// x -> conv (3x3, 16 -> 16) -> Add with `residual` -> ReLU, with the
  /// sum's operands in `order`; "b" is a second convolution of x made
  /// after the first (a downsampling branch), "k" a per-channel constant.
  static func graph(residual: String, convFirst: Bool, size: Int = 9, n: Int = 1) -> (Graph, [String: NDArray]) {
    let values = OpReferenceTests.values
    let inits: [String: NDArray] = [
      "w": NDArray(shape: [16, 16, 3, 3], floats: values(16 * 16 * 9, 41)), "bias": NDArray(shape: [16], floats: values(16, 42)),
      "w2": NDArray(shape: [16, 16, 1, 1], floats: values(256, 43)), "k": NDArray(shape: [1, 16, 1, 1], floats: values(16, 44)),
    ]
    let nodes = [
      Node(name: "conv", opType: "Conv", inputs: ["x", "w", "bias"], outputs: ["a"], attributes: ["pads": .ints([1, 1, 1, 1])]),
      Node(name: "branch", opType: "Conv", inputs: ["x", "w2"], outputs: ["b"]),
      Node(name: "sum", opType: "Add", inputs: convFirst ? ["a", residual] : [residual, "a"], outputs: ["s"]),
      Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["y"]),
      Node(name: "both", opType: "Add", inputs: ["y", "b"], outputs: ["z"]),
    ]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["z"], opset: 17)
    return (graph, ["x": NDArray(shape: [n, 16, size, size], floats: values(n * 16 * size * size, 45).map { $0 * 2 })])
  }

  /// Every operand order and residual, on Winograd (summed in its output
  /// transform) and the product (summed after), every instruction set, 1
  /// and 2 threads.
  @Test(arguments: InstructionSet.available)
  func fusedSumEqualsTheAddAfter(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for residual in ["x", "b", "k"] {
        for convFirst in [true, false] {
          let (graph, input) = Self.graph(residual: residual, convFirst: convFirst, n: residual == "x" ? 2 : 1)
          for strategy in [Convolution.Strategy.winograd, .im2col] {
            try Convolution.$forcedStrategy.withValue(strategy) {
              let expected = try Executor(graph: graph, threads: 1, optimize: false).run(input)["z"]!
              for threads in [1, 2] {
                let fused = try Executor(graph: graph, threads: threads)
                #expect(!fused.optimized.nodes.contains { $0.name == "sum" }, "\(residual)")
                let run = try fused.profiledRun(input)
                let path = run.nodes.first { $0.name == "conv" }?.path ?? ""
                // Winograd sums in place where the operands' shapes agree.
                let inPlace = strategy == .winograd && residual != "k"
                #expect(path.contains(inPlace ? "+add+relu" : ",add+relu"), "\(residual) \(strategy): \(path)")
                let check = closeness(run.values["z"]!.floatValues(), expected.floatValues(), rtol: 0, atol: 0)
                #expect(check.isClose, "\(residual) first \(convFirst) \(strategy) threads \(threads): \(check)")
              }
            }
          }
        }
      }
    }
  }

  /// The Add stays a node of its own where the convolution's output is
  /// read by something else too, is asked for, or has steps of its own,
  /// and after a convolution Winograd cannot run.
  @Test func onlyABareSoleReaderIsFused() throws {
    let (graph, _) = Self.graph(residual: "x", convFirst: true)
    func fusesSum(_ g: Graph, keep: Set<String> = []) -> Bool {
      !GraphOptimizer.optimize(g, keep: keep).nodes.contains { $0.name == "sum" }
    }
    #expect(fusesSum(graph))
    #expect(!fusesSum(graph, keep: ["a"]))
    // The sum after the 1x1 branch: Winograd could not run it.
    #expect(GraphOptimizer.optimize(graph, keep: []).nodes.contains { $0.name == "both" })
    var shared = graph
    shared.nodes.append(Node(name: "other", opType: "Sigmoid", inputs: ["a"], outputs: ["o"]))
    shared.outputs.append("o")
    #expect(!fusesSum(shared))
    var stepped = graph
    stepped.nodes.insert(Node(name: "pre", opType: "Relu", inputs: ["a"], outputs: ["ar"]), at: 1)
    stepped.nodes[3].inputs = ["ar", "x"]
    #expect(!fusesSum(stepped))
  }
}
