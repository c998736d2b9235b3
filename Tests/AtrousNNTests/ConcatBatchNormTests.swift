import AtrousCore
@testable import AtrousNN
import Testing
import _CKernels

/// DenseNet's layers as PyTorch exports them: each begins with a Concat of
/// every earlier feature map read only by a BatchNormalization (and its
/// ReLU), run as one `_ConcatBatchNorm`; the same values as the ops one by
/// one, on every instruction set.
@Suite struct ConcatBatchNormTests {
  static func values(_ count: Int, seed: Int) -> [Float] { OpReferenceTests.values(count, seed: seed) }

  /// A BatchNormalization's four parameters for `channels`, named after
  /// `prefix`, variances positive.
  static func batchNorm(_ prefix: String, channels: Int, seed: Int) -> [String: NDArray] {
    let variance = values(channels, seed: seed + 3).map { abs($0) + 0.5 }
    return [prefix + "s": NDArray(shape: [channels], floats: values(channels, seed: seed)),
            prefix + "b": NDArray(shape: [channels], floats: values(channels, seed: seed + 1)),
            prefix + "m": NDArray(shape: [channels], floats: values(channels, seed: seed + 2)),
            prefix + "v": NDArray(shape: [channels], floats: variance)]
  }

  /// Two dense layers on a 3-channel input at `size` x `size`: the input
  /// itself (planar) and a 1x1 Conv of it (channels-last, 16 channels) are
  /// the first layer's parts; its BatchNormalization and ReLU feed a 1x1
  /// Conv of 12 channels (a vector and a rest), and the second layer
  /// concatenates all three (31 channels) into a BatchNormalization alone.
  /// With `shared`, the second Concat is also an output of the graph.
  static func layers(size: Int, shared: Bool = false) -> (Graph, [String: NDArray]) {
    var inits: [String: NDArray] = [
      "w0": NDArray(shape: [16, 3, 1, 1], floats: values(48, seed: 90)),
      "w1": NDArray(shape: [12, 19, 1, 1], floats: values(12 * 19, seed: 91)),
    ]
    inits.merge(batchNorm("n1", channels: 19, seed: 92)) { a, _ in a }
    inits.merge(batchNorm("n2", channels: 31, seed: 96)) { a, _ in a }
    let nodes = [
      Node(name: "a", opType: "Conv", inputs: ["x", "w0"], outputs: ["a"]),
      Node(name: "cat1", opType: "Concat", inputs: ["x", "a"], outputs: ["cat1"], attributes: ["axis": .int(1)]),
      Node(name: "n1", opType: "BatchNormalization", inputs: ["cat1", "n1s", "n1b", "n1m", "n1v"], outputs: ["n1"]),
      Node(name: "r1", opType: "Relu", inputs: ["n1"], outputs: ["r1"]),
      Node(name: "b", opType: "Conv", inputs: ["r1", "w1"], outputs: ["b"]),
      Node(name: "cat2", opType: "Concat", inputs: ["x", "a", "b"], outputs: ["cat2"], attributes: ["axis": .int(1)]),
      Node(name: "n2", opType: "BatchNormalization", inputs: ["cat2", "n2s", "n2b", "n2m", "n2v"], outputs: ["y"],
           attributes: ["epsilon": .float(1e-3)]),
    ]
    let shape = [2, 3, size, size]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: shape)],
                      outputs: shared ? ["y", "cat2"] : ["y"], opset: 17)
    return (graph, ["x": NDArray(shape: shape, floats: values(2 * 3 * size * size, seed: 99))])
  }

  /// Each Concat and its BatchNormalization become one node (the first
  /// with its ReLU), at 1 and 2 threads, on a map of 7 x 7 and one large
  /// enough to be split across threads (`Elementwise.parallelThreshold`);
  /// the values within float rounding of the ops one by one.
  @Test(arguments: InstructionSet.available)
  func denseLayersMatchTheOpsOneByOne(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for (size, threads) in [(7, 1), (7, 2), (90, 2)] {
        let (graph, input) = Self.layers(size: size)
        let fused = try Executor(graph: graph, threads: threads)
        #expect(fused.optimized.nodes.map(\.opType) == ["Conv", ConcatBatchNorm.opType, "Conv", ConcatBatchNorm.opType],
                "\(isa)")
        let expected = try Executor(graph: graph, threads: threads, optimize: false).run(input)["y"]!
        let y = try fused.run(input)["y"]!
        #expect(y.shape == expected.shape)
        let worst = zip(y.floatValues(), expected.floatValues()).map { abs($0 - $1) / (abs($1) + 1) }.max() ?? 0
        #expect(worst <= 1e-6, "\(isa) \(size) x \(size), \(threads) threads: \(worst)")
      }
    }
  }

  /// A Concat whose output is also read elsewhere (here: a graph output)
  /// stays a Concat.
  @Test func sharedConcatStays() throws {
    let (graph, input) = Self.layers(size: 5, shared: true)
    let fused = try Executor(graph: graph)
    #expect(fused.optimized.nodes.map(\.opType) == ["Conv", ConcatBatchNorm.opType, "Conv", "Concat", "BatchNormalization"])
    let expected = try Executor(graph: graph, optimize: false).run(input)
    let outputs = try fused.run(input)
    for name in ["y", "cat2"] {
      let worst = zip(outputs[name]!.floatValues(), expected[name]!.floatValues()).map { abs($0 - $1) / (abs($1) + 1) }.max()
      #expect((worst ?? 1) <= 1e-6, "\(name)")
    }
  }
}
