import AtrousCore
@testable import AtrousNN
import Testing
import _CKernels

/// A channel Concat read only by a 1x1 Conv (SqueezeNet's fire modules,
/// YOLOX's cross-stage blocks) runs as one `_ConcatConvolution` whose
/// product reads the parts where they are; the same values as the ops one
/// by one, on every instruction set.
@Suite struct ConcatConvolutionTests {
  static func values(_ count: Int, seed: Int) -> [Float] { OpReferenceTests.values(count, seed: seed) }

  /// Three parts on a 3-channel input at `size` x `size`: the input itself
  /// (planar), a 1x1 Conv of it (channels-last, 16 channels) and a 3x3
  /// Conv with a ReLU (21 channels), concatenated (40 channels) into a 1x1
  /// Conv of `cout` channels with its ReLU, with or without a bias. With
  /// `shared`, the Concat is also an output.
  static func graph(size: Int, bias: Bool, cout: Int = 20, shared: Bool = false) -> (Graph, [String: NDArray]) {
    var inits: [String: NDArray] = [
      "w0": NDArray(shape: [16, 3, 1, 1], floats: values(48, seed: 120)),
      "w1": NDArray(shape: [21, 3, 3, 3], floats: values(21 * 27, seed: 121)),
      "w2": NDArray(shape: [cout, 40, 1, 1], floats: values(cout * 40, seed: 122)),
    ]
    if bias { inits["b2"] = NDArray(shape: [cout], floats: values(cout, seed: 123)) }
    let nodes = [
      Node(name: "a", opType: "Conv", inputs: ["x", "w0"], outputs: ["a"]),
      Node(name: "c", opType: "Conv", inputs: ["x", "w1"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
      Node(name: "r", opType: "Relu", inputs: ["c"], outputs: ["r"]),
      Node(name: "cat", opType: "Concat", inputs: ["x", "a", "r"], outputs: ["cat"], attributes: ["axis": .int(1)]),
      Node(name: "p", opType: "Conv", inputs: ["cat", "w2"] + (bias ? ["b2"] : []), outputs: ["p"]),
      Node(name: "y", opType: "Relu", inputs: ["p"], outputs: ["y"]),
    ]
    let shape = [2, 3, size, size]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: shape)],
                      outputs: shared ? ["y", "cat"] : ["y"], opset: 17)
    return (graph, ["x": NDArray(shape: shape, floats: values(2 * 3 * size * size, seed: 124))])
  }

  /// The Concat and the Conv become one node, at 1 and 2 threads, on a
  /// 7 x 7 map (one thread's work) and one large enough to split into
  /// bands of rows, with 20 output channels (a panel and a rest) and 72
  /// (two panels and a rest of 8); within float rounding of the ops one by
  /// one.
  @Test(arguments: InstructionSet.available)
  func partsMatchTheOpsOneByOne(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for (size, threads) in [(7, 1), (7, 2), (90, 2)] {
        for (bias, cout) in [(true, 20), (false, 20), (true, 72)] {
          let (graph, input) = Self.graph(size: size, bias: bias, cout: cout)
          let fused = try Executor(graph: graph, threads: threads)
          #expect(fused.optimized.nodes.map(\.opType) == ["Conv", "Conv", ConcatConvolution.opType], "\(isa)")
          let expected = try Executor(graph: graph, threads: threads, optimize: false).run(input)["y"]!
          let run = try fused.profiledRun(input)
          #expect(run.nodes.last?.path == "concat-parts,im2col+relu")
          let y = run.values["y"]!
          #expect(y.shape == expected.shape)
          let worst = zip(y.standard().floatValues(), expected.floatValues()).map { abs($0 - $1) / (abs($1) + 1) }.max() ?? 1
          #expect(worst <= 1e-5, "\(isa) \(size) x \(size), \(threads) threads, bias \(bias), \(cout) outputs: \(worst)")
        }
      }
    }
  }

  /// A Concat whose output is also read elsewhere (here: a graph output)
  /// stays a Concat, and so does the Conv after it.
  @Test func sharedConcatStays() throws {
    let (graph, input) = Self.graph(size: 5, bias: true, shared: true)
    let fused = try Executor(graph: graph)
    #expect(fused.optimized.nodes.map(\.opType) == ["Conv", "Conv", "Concat", "Conv"])
    let expected = try Executor(graph: graph, optimize: false).run(input)
    let outputs = try fused.run(input)
    for name in ["y", "cat"] {
      let worst = zip(outputs[name]!.standard().floatValues(), expected[name]!.standard().floatValues())
        .map { abs($0 - $1) / (abs($1) + 1) }.max()
      #expect((worst ?? 1) <= 1e-5, "\(name)")
    }
  }

  /// The packed panels part by part: per part, per panel, the part's rows
  /// in order.
  @Test func weightsSplitByParts() {
    let nr = atr_packed_b_size(1, 1), k = 5, panels = 2
    let packed = (0..<(panels * k * nr)).map(Float.init)
    let parts = ConcatConvolution.split(Tensor(shape: [packed.count], values: packed), widths: [2, 3]).scalars
    #expect(parts[..<(4 * nr)] == packed[0..<(2 * nr)] + packed[(k * nr)..<((k + 2) * nr)])
    #expect(parts[(4 * nr)...] == packed[(2 * nr)..<(k * nr)] + packed[((k + 2) * nr)..<(2 * k * nr)])
  }
}
