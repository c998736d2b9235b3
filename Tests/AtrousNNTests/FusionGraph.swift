@testable import AtrousNN
import AtrousTestSupport
import Testing

/// The graphs the fusion tests run fused and unfused: input "x" (N, Cin,
/// size, size) of planes, or made channels-last first by a 1x1 Conv
/// ("pre") when `pixelsIn`; then the nodes `body` makes from the name of
/// the value they read, the last writing "y".
enum FusionGraph {
  /// - Parameters:
  ///   - seeds: of the 1x1 weights and of the input values (times 3).
  ///   - body: the nodes after the input and their initializers.
  static func make(cin: Int, n: Int, size: Int, pixelsIn: Bool, seeds: (pre: Int, input: Int),
                   _ body: (String) -> (nodes: [Node], initializers: [String: NDArray])) -> (Graph, [String: NDArray]) {
    let values = OpReferenceTests.values
    var nodes: [Node] = [], inits: [String: NDArray] = [:]
    var input = "x"
    if pixelsIn {
      inits["w0"] = NDArray(shape: [cin, cin, 1, 1], floats: values(cin * cin, seeds.pre))
      nodes.append(Node(name: "pre", opType: "Conv", inputs: ["x", "w0"], outputs: ["x0"]))
      input = "x0"
    }
    let (rest, weights) = body(input)
    nodes += rest
    inits.merge(weights) { $1 }
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["y"], opset: 17)
    let x = NDArray(shape: [n, cin, size, size], floats: values(n * cin * size * size, seeds.input).map { $0 * 3 })
    return (graph, ["x": x])
  }

  /// Expects output "y" of a run's `values` to equal `expected` to the
  /// bit, in shape and values: a fused run makes the unfused graph's values.
  static func expectBitEqual(_ values: [String: NDArray], _ expected: NDArray, _ context: String,
                             sourceLocation: SourceLocation = #_sourceLocation) {
    let y = values["y"]!
    #expect(y.shape == expected.shape, "\(context)", sourceLocation: sourceLocation)
    let check = closeness(y.floatValues(), expected.floatValues(), rtol: 0, atol: 0)
    #expect(check.isClose, "\(context): \(check)", sourceLocation: sourceLocation)
  }
}
