import AtrousCore
@testable import AtrousNN
import Testing
import _CKernels

/// ShuffleNet's units as PyTorch exports them: the channel split computed
/// from the map's Shape (folded to constants where the input's shape is
/// fixed), the Concat of the first half and the branch, and the shuffle of
/// two groups, run as one `_InterleaveChannels`; the same values as the
/// ops one by one, on every instruction set.
@Suite struct ShuffledConcatTests {
  static func values(_ count: Int, seed: Int) -> [Float] { OpReferenceTests.values(count, seed: seed) }

  /// A unit of stride 1 on `channels` channels at `size` x `size`: "x" made
  /// channels-last by a 1x1 Conv, split in halves at Shape(x)[1] / 2, the
  /// second half through a 1x1 Conv, the first half and that concatenated
  /// and shuffled into "y". `declared` fixes the input's shape.
  static func unit(channels: Int, size: Int, declared: Bool) -> (Graph, [String: NDArray]) {
    let half = channels / 2
    let inits: [String: NDArray] = [
      "w0": NDArray(shape: [channels, 3, 1, 1], floats: values(3 * channels, seed: 80)),
      "w1": NDArray(shape: [half, half, 1, 1], floats: values(half * half, seed: 81)),
      "one": NDArray(shape: [], int64s: [1]), "two": NDArray(shape: [], int64s: [2]),
      "zero": NDArray(shape: [1], int64s: [0]), "axes": NDArray(shape: [1], int64s: [1]),
      "split": NDArray(shape: [5], int64s: [1, 2, Int64(half), Int64(size), Int64(size)]),
      "merged": NDArray(shape: [4], int64s: [1, Int64(channels), Int64(size), Int64(size)]),
    ]
    let nodes = [
      Node(name: "pre", opType: "Conv", inputs: ["x", "w0"], outputs: ["x0"]),
      Node(name: "shape", opType: "Shape", inputs: ["x0"], outputs: ["shape"]),
      Node(name: "c", opType: "Gather", inputs: ["shape", "one"], outputs: ["c"]),
      Node(name: "c1", opType: "Add", inputs: ["c", "one"], outputs: ["c1"]),
      Node(name: "h", opType: "Div", inputs: ["c1", "two"], outputs: ["h"]),
      Node(name: "h1", opType: "Unsqueeze", inputs: ["h", "zero"], outputs: ["h1"]),
      Node(name: "end", opType: "Mul", inputs: ["h1", "two"], outputs: ["end"]),
      Node(name: "s1", opType: "Slice", inputs: ["x0", "zero", "h1", "axes"], outputs: ["s1"]),
      Node(name: "s2", opType: "Slice", inputs: ["x0", "h1", "end", "axes"], outputs: ["s2"]),
      Node(name: "b", opType: "Conv", inputs: ["s2", "w1"], outputs: ["b"]),
      Node(name: "cat", opType: "Concat", inputs: ["s1", "b"], outputs: ["cat"], attributes: ["axis": .int(1)]),
      Node(name: "r1", opType: "Reshape", inputs: ["cat", "split"], outputs: ["r1"]),
      Node(name: "t", opType: "Transpose", inputs: ["r1"], outputs: ["t"], attributes: ["perm": .ints([0, 2, 1, 3, 4])]),
      Node(name: "y", opType: "Reshape", inputs: ["t", "merged"], outputs: ["y"]),
    ]
    let shape = [1, 3, size, size]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: declared ? shape : [])],
                      outputs: ["y"], opset: 17)
    return (graph, ["x": NDArray(shape: shape, floats: values(3 * size * size, seed: 82))])
  }

  /// 40 channels (runs of 20: a vector of 16 and a rest) and 16 (runs of
  /// 8: the rest alone), at 5 x 5.
  @Test(arguments: InstructionSet.available)
  func unitRunsAsOneInterleaveWhereTheShapeIsFixed(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for channels in [40, 16] {
        let (graph, input) = Self.unit(channels: channels, size: 5, declared: true)
        let fused = try Executor(graph: graph)
        #expect(fused.optimized.nodes.map(\.opType) == ["Conv", "Slice", "Conv", InterleaveChannels.opType],
                "\(isa) \(channels)")
        let expected = try Executor(graph: graph, optimize: false).run(input)["y"]!
        let y = try fused.run(input)["y"]!
        #expect(y.shape == expected.shape)
        #expect(y.floatValues() == expected.floatValues(), "\(isa) \(channels)")
      }
    }
  }

  /// Where the input's shape is not declared the split stays computed at
  /// run time: the Shape node and the Slices stay, and the values are the
  /// same.
  @Test func unitWithAnOpenShapeKeepsItsSlices() throws {
    let (graph, input) = Self.unit(channels: 40, size: 5, declared: false)
    let fused = try Executor(graph: graph)
    #expect(fused.optimized.nodes.contains { $0.opType == "Shape" })
    #expect(fused.optimized.nodes.filter { $0.opType == "Slice" }.count == 2)
    let expected = try Executor(graph: graph, optimize: false).run(input)["y"]!.floatValues()
    #expect(try fused.run(input)["y"]!.floatValues() == expected)
  }

  /// A Shape is folded only where no input's values change what it reads:
  /// here a Reshape takes its shape from a second input (declared, fixed
  /// at [2]), so the Shape of its output stays a node and follows each run.
  @Test func shapeOfAValueShapedByAnInputStays() throws {
    let nodes = [
      Node(name: "r", opType: "Reshape", inputs: ["x", "s"], outputs: ["r"]),
      Node(name: "y", opType: "Shape", inputs: ["r"], outputs: ["y"]),
    ]
    let graph = Graph(nodes: nodes, initializers: [:],
                      inputs: [Graph.Input(name: "x", shape: [2, 6]), Graph.Input(name: "s", shape: [2], dtype: .int64)],
                      outputs: ["y"], opset: 17)
    let fused = try Executor(graph: graph)
    #expect(fused.optimized.nodes.map(\.opType) == ["Reshape", "Shape"])
    let x = NDArray(shape: [2, 6], floats: Self.values(12, seed: 88))
    for shape in [[3, 4], [6, 2]] {
      let y = try fused.run(["x": x, "s": NDArray(shape: [2], int64s: shape.map(Int64.init))])["y"]!
      #expect(y.intValues() == shape)
    }
  }

  /// A downsampling unit (two branches, no Slice) on planes, given as the
  /// graph's inputs: the runs are whole inputs, made channels-last first.
  /// With an input whose channels differ from the shuffle's split the run
  /// fails with an error, as the Reshape of the Concat does.
  @Test func wholeInputsOnPlanesAndAMismatch() throws {
    let inits: [String: NDArray] = [
      "split": NDArray(shape: [5], int64s: [2, 2, 20, 3, 4]), "merged": NDArray(shape: [4], int64s: [2, 40, 3, 4]),
    ]
    let nodes = [
      Node(name: "cat", opType: "Concat", inputs: ["a", "b"], outputs: ["cat"], attributes: ["axis": .int(1)]),
      Node(name: "r1", opType: "Reshape", inputs: ["cat", "split"], outputs: ["r1"]),
      Node(name: "t", opType: "Transpose", inputs: ["r1"], outputs: ["t"], attributes: ["perm": .ints([0, 2, 1, 3, 4])]),
      Node(name: "y", opType: "Reshape", inputs: ["t", "merged"], outputs: ["y"]),
    ]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "a", shape: []), Graph.Input(name: "b", shape: [])],
                      outputs: ["y"], opset: 17)
    let fused = try Executor(graph: graph)
    #expect(fused.optimized.nodes.map(\.opType) == [InterleaveChannels.opType])
    let input = ["a": NDArray(shape: [2, 20, 3, 4], floats: Self.values(480, seed: 83)),
                 "b": NDArray(shape: [2, 20, 3, 4], floats: Self.values(480, seed: 84))]
    let expected = try Executor(graph: graph, optimize: false).run(input)["y"]!
    let y = try fused.run(input)["y"]!
    #expect(y.shape == expected.shape)
    #expect(y.floatValues() == expected.floatValues())
    var wrong = input
    wrong["b"] = NDArray(shape: [2, 24, 3, 4], floats: Self.values(576, seed: 85))
    #expect(throws: NNError.self) { try fused.run(wrong) }
  }

  /// The Concat is left alone where something else reads it and where the
  /// shuffle has three groups, a Slice where it steps by 2; a Slice of
  /// either half of its input is read where it is. The same values each way.
  @Test func whichConcatsAndSlicesFuse() throws {
    func graph(groups: Int, keepConcat: Bool, step: Int, start: Int = 0) -> Graph {
      let per = 24 / groups
      var inits: [String: NDArray] = [
        "split": NDArray(shape: [5], int64s: [1, Int64(groups), Int64(per), 3, 4]),
        "merged": NDArray(shape: [4], int64s: [1, 24, 3, 4]),
        "zero": NDArray(shape: [1], int64s: [Int64(start)]), "end": NDArray(shape: [1], int64s: [Int64(start + 12 * step)]),
        "axes": NDArray(shape: [1], int64s: [1]),
      ]
      var slice = ["a", "zero", "end", "axes"]
      if step != 1 {
        inits["step"] = NDArray(shape: [1], int64s: [Int64(step)])
        slice.append("step")
      }
      let nodes = [
        Node(name: "s", opType: "Slice", inputs: slice, outputs: ["s"]),
        Node(name: "cat", opType: "Concat", inputs: ["s", "b"], outputs: ["cat"], attributes: ["axis": .int(1)]),
        Node(name: "r1", opType: "Reshape", inputs: ["cat", "split"], outputs: ["r1"]),
        Node(name: "t", opType: "Transpose", inputs: ["r1"], outputs: ["t"], attributes: ["perm": .ints([0, 2, 1, 3, 4])]),
        Node(name: "y", opType: "Reshape", inputs: ["t", "merged"], outputs: ["y"]),
      ]
      return Graph(nodes: nodes, initializers: inits,
                   inputs: [Graph.Input(name: "a", shape: [1, 24, 3, 4]), Graph.Input(name: "b", shape: [1, 12, 3, 4])],
                   outputs: keepConcat ? ["y", "cat"] : ["y"], opset: 17)
    }
    let input = ["a": NDArray(shape: [1, 24, 3, 4], floats: Self.values(288, seed: 86)),
                 "b": NDArray(shape: [1, 12, 3, 4], floats: Self.values(144, seed: 87))]
    // The last two fuse whole: the first half of "a", and its second half
    // (a run from channel 12).
    for (groups, keepConcat, step, start, fusedOps) in [
      (3, false, 1, 0, ["Slice", "Concat", ChannelShuffle.opType]), (2, true, 1, 0, ["Slice", "Concat", ChannelShuffle.opType]),
      (2, false, 2, 0, ["Slice", InterleaveChannels.opType]), (2, false, 1, 0, [InterleaveChannels.opType]),
      (2, false, 1, 12, [InterleaveChannels.opType]),
    ] {
      let g = graph(groups: groups, keepConcat: keepConcat, step: step, start: start)
      let fused = try Executor(graph: g)
      #expect(fused.optimized.nodes.map(\.opType) == fusedOps, "\(groups) groups, step \(step) from \(start)")
      let expected = try Executor(graph: g, optimize: false).run(input)["y"]!.floatValues()
      #expect(try fused.run(input)["y"]!.floatValues() == expected, "\(groups) groups, step \(step) from \(start)")
    }
  }

  /// The kernel against a plain loop: runs of 1 to 40 channels (vectors of
  /// 16 and rests) read from wider pixels at an offset.
  @Test(arguments: InstructionSet.available)
  func kernelMatchesPlainLoops(isa: InstructionSet) {
    InstructionSet.with(isa) {
      let pixels = 7
      for width in 1...40 {
        let (lda, ldb) = (width + 3, width)
        let a = Self.values(pixels * lda + 1, seed: width), b = Self.values(pixels * ldb, seed: width + 50)
        var out = [Float](repeating: .nan, count: pixels * 2 * width)
        a.withUnsafeBufferPointer { pa in
          atr_interleave_channels(&out, pa.baseAddress! + 1, lda, b, ldb, pixels, width)
        }
        var expected = out
        for p in 0..<pixels {
          for i in 0..<width {
            expected[p * 2 * width + 2 * i] = a[1 + p * lda + i]
            expected[p * 2 * width + 2 * i + 1] = b[p * ldb + i]
          }
        }
        #expect(out == expected, "\(isa) width \(width)")
      }
    }
  }
}
