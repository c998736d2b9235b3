import AtrousCore
@testable import AtrousNN
import AtrousTestSupport
import Testing

/// A residual Add fused into the convolution before it
/// (`ResidualConvolution`) against the two run one after the other,
/// unoptimized, on the same convolution kernel.
@Suite struct ResidualConvolutionTests {
  /// x -> conv (3x3, C -> C) -> Add with `residual` -> ReLU, the sum's
  /// operands in either order; "b" is a second convolution of x made
  /// after the first (a downsampling branch), "k" the input's channel
  /// means (a value per channel, broadcast: a per-channel constant would
  /// join the convolution's bias instead).
  /// With `kernel` and `stride`, the first convolution is kernel x kernel
  /// at that stride (padded by kernel / 2), the branch at the stride too.
  static func graph(residual: String, convFirst: Bool, channels c: Int = 16, size: Int = 9, n: Int = 1, dilation: Int = 1,
                    kernel: Int = 3, stride: Int = 1)
    -> (Graph, [String: NDArray])
  {
    let values = OpReferenceTests.values
    let inits: [String: NDArray] = [
      "w": NDArray(shape: [c, c, kernel, kernel], floats: values(c * c * kernel * kernel, 41)),
      "bias": NDArray(shape: [c], floats: values(c, 42)), "w2": NDArray(shape: [c, c, 1, 1], floats: values(c * c, 43)),
    ]
    let means = residual == "k" ? [Node(name: "means", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["k"])] : []
    let nodes = means + [
      Node(name: "conv", opType: "Conv", inputs: ["x", "w", "bias"], outputs: ["a"],
           attributes: ["pads": .ints([Int](repeating: dilation * (kernel / 2), count: 4)),
                        "dilations": .ints([dilation, dilation]), "strides": .ints([stride, stride])]),
      Node(name: "branch", opType: "Conv", inputs: ["x", "w2"], outputs: ["b"], attributes: ["strides": .ints([stride, stride])]),
      Node(name: "sum", opType: "Add", inputs: convFirst ? ["a", residual] : [residual, "a"], outputs: ["s"]),
      Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["y"]),
      Node(name: "both", opType: "Add", inputs: ["y", "b"], outputs: ["z"]),
    ]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["z"], opset: 17)
    return (graph, ["x": NDArray(shape: [n, c, size, size], floats: values(n * c * size * size, 45).map { $0 * 2 })])
  }

  /// Every operand order and residual, on Winograd (summed in its output
  /// transform) with each output tile and the product (summed after), for
  /// channel counts that fill whole vectors and that do not (24, 40: the
  /// last vector overlaps the one before) and maps that tiles do not
  /// divide, a dilated convolution (its tiles' pixels 2 apart), every
  /// instruction set, 1 and 2 threads.
  @Test(arguments: InstructionSet.available)
  func fusedSumEqualsTheAddAfter(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for (channels, size, dilation) in [(16, 9, 1), (24, 7, 1), (40, 13, 1), (24, 13, 2)] {
        for residual in ["x", "b", "k"] {
          for convFirst in [true, false] {
            let (graph, input) = Self.graph(residual: residual, convFirst: convFirst, channels: channels, size: size,
                                            n: residual == "x" ? 2 : 1, dilation: dilation)
            for (strategy, tile) in [(Convolution.Strategy.winograd, 2), (.winograd, 4), (.winograd, 6), (.im2col, 4)] {
              try Convolution.$forcedStrategy.withValue(strategy) {
                try WinogradTile.$forced.withValue(tile) {
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
                    let what = "\(channels)ch \(size)px d\(dilation) \(residual) first \(convFirst) \(strategy) F\(tile) threads \(threads)"
                    #expect(check.isClose, "\(what): \(check)")
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  /// The same at stride 2: a 3x3 convolution by Winograd on the input's
  /// phases and a 7x7 one over its space-to-depth, each summed in the
  /// output transform, against the Add after; residuals of the output's
  /// shape (the strided branch) and broadcast (the channel means).
  @Test(arguments: InstructionSet.available)
  func fusedSumAtStride2EqualsTheAddAfter(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for (channels, size, kernel) in [(16, 13, 3), (24, 16, 3), (8, 17, 7), (16, 14, 7)] {
        for residual in ["b", "k"] {
          let (graph, input) = Self.graph(residual: residual, convFirst: true, channels: channels, size: size,
                                          kernel: kernel, stride: 2)
          try Convolution.$forcedStrategy.withValue(.winograd) {
            let expected = try Executor(graph: graph, threads: 1, optimize: false).run(input)["z"]!
            for threads in [1, 2] {
              let run = try Executor(graph: graph, threads: threads).profiledRun(input)
              let path = run.nodes.first { $0.name == "conv" }?.path ?? ""
              let what = "\(channels)ch \(size)px \(kernel)x\(kernel) \(residual) threads \(threads): \(path)"
              // Summed in the output transform where Winograd takes the
              // channels and the branch's residual has the output's shape.
              let inPlace = path.contains("winograd") && residual == "b"
              #expect(path.contains(inPlace ? "+add+relu" : ",add+relu"), "\(what)")
              let check = closeness(run.values["z"]!.floatValues(), expected.floatValues(), rtol: 0, atol: 0)
              #expect(check.isClose, "\(what): \(check)")
            }
          }
        }
      }
    }
  }

  /// The Add stays a node of its own where the convolution's output is
  /// read by something else too, is asked for, or has steps of its own,
  /// and after a convolution that neither Winograd nor a 1x1 product runs.
  @Test func onlyABareSoleReaderIsFused() throws {
    let (graph, _) = Self.graph(residual: "x", convFirst: true)
    func fusesSum(_ g: Graph, keep: Set<String> = []) -> Bool {
      !GraphOptimizer.optimize(g, keep: keep).nodes.contains { $0.name == "sum" }
    }
    #expect(fusesSum(graph))
    #expect(!fusesSum(graph, keep: ["a"]))
    // The sum after the 1x1 branch joins it; after a 5x5 branch, or a 1x1
    // one with padding, it stays.
    #expect(!GraphOptimizer.optimize(graph, keep: []).nodes.contains { $0.name == "both" })
    for (kernel, pads) in [(5, 2), (1, 1)] {
      var wide = graph
      wide.initializers["w2"] = NDArray(shape: [16, 16, kernel, kernel], floats: OpReferenceTests.values(256 * kernel * kernel, seed: 43))
      wide.nodes[1].attributes["pads"] = .ints([pads, pads, pads, pads])
      #expect(GraphOptimizer.optimize(wide, keep: []).nodes.contains { $0.name == "both" }, "\(kernel)x\(kernel)")
    }
    var shared = graph
    shared.nodes.append(Node(name: "other", opType: "Sigmoid", inputs: ["a"], outputs: ["o"]))
    shared.outputs.append("o")
    #expect(!fusesSum(shared))
    var stepped = graph
    stepped.nodes.insert(Node(name: "pre", opType: "Relu", inputs: ["a"], outputs: ["ar"]), at: 1)
    stepped.nodes[3].inputs = ["ar", "x"]
    #expect(!fusesSum(stepped))
  }
  /// x -> 3x3 conv (Cin -> Cin, so the next reads channels-last pixels as
  /// in a network) -> 1x1 conv (Cin -> C, bias) -> Add with r -> ReLU, in
  /// either operand order; r is a second input of the 1x1's output shape.
  static func productGraph(cin: Int, c: Int, size: Int, n: Int, convFirst: Bool) -> (Graph, [String: NDArray]) {
    let values = OpReferenceTests.values
    let inits: [String: NDArray] = [
      "w": NDArray(shape: [c, cin, 1, 1], floats: values(c * cin, 51)), "bias": NDArray(shape: [c], floats: values(c, 52)),
      "w0": NDArray(shape: [cin, cin, 3, 3], floats: values(cin * cin * 9, 55)),
    ]
    let nodes = [
      Node(name: "pre", opType: "Conv", inputs: ["x", "w0"], outputs: ["p"], attributes: ["pads": .ints([1, 1, 1, 1])]),
      Node(name: "conv", opType: "Conv", inputs: ["p", "w", "bias"], outputs: ["a"]),
      Node(name: "sum", opType: "Add", inputs: convFirst ? ["a", "r"] : ["r", "a"], outputs: ["s"]),
      Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["z"]),
    ]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: []), Graph.Input(name: "r", shape: [])],
                      outputs: ["z"], opset: 17)
    return (graph, ["x": NDArray(shape: [n, cin, size, size], floats: values(n * cin * size * size, 53)),
                    "r": NDArray(shape: [n, c, size, size], floats: values(n * c * size * size, 54).map { $0 * 3 })])
  }

  /// The sum after a 1x1 product, added to each block of rows as it is
  /// made, against the Add after it, unoptimized: exactly equal, every
  /// instruction set, 1 and 2 threads. 24 and 40 channels on 7x7 and 20x20
  /// maps (blocks of rows, a part panel, two images); 192 -> 130 channels
  /// on a 7x7 map, which two threads split by 32-wide panels (the last a
  /// part one).
  @Test(arguments: InstructionSet.available)
  func fusedSumAfterAProductEqualsTheAddAfter(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for (cin, c, size, n) in [(24, 40, 7, 1), (40, 24, 20, 2), (192, 130, 7, 1), (48, 130, 13, 1)] {
        for convFirst in [true, false] {
          let (graph, input) = Self.productGraph(cin: cin, c: c, size: size, n: n, convFirst: convFirst)
          let expected = try Executor(graph: graph, threads: 1, optimize: false).run(input)["z"]!
          for threads in [1, 2] {
            let fused = try Executor(graph: graph, threads: threads)
            #expect(!fused.optimized.nodes.contains { $0.name == "sum" })
            let run = try fused.profiledRun(input)
            let path = run.nodes.first { $0.name == "conv" }?.path ?? ""
            let what = "\(cin)->\(c) \(size)px x\(n) first \(convFirst) threads \(threads)"
            #expect(path.contains("+add+relu"), "\(what): \(path)")
            let check = closeness(run.values["z"]!.floatValues(), expected.floatValues(), rtol: 0, atol: 0)
            #expect(check.isClose, "\(what): \(check)")
          }
        }
      }
    }
  }
  /// x -> 3x3 conv (C channels) -> 1x1 expansion (6C) -> ReLU6 ->
  /// depthwise k x k -> ReLU -> 1x1 projection (C) -> Add with the 3x3
  /// conv's output ("c0") or the input's channel means ("k", broadcast)
  /// -> ReLU: an inverted-residual block as MobileNetV2 and MnasNet have
  /// them.
  static func blockGraph(channels c: Int, kernel: Int, residual: String) -> Graph {
    let values = OpReferenceTests.values
    let e = 6 * c
    let inits: [String: NDArray] = [
      "w0": NDArray(shape: [c, c, 3, 3], floats: values(c * c * 9, 61)),
      "we": NDArray(shape: [e, c, 1, 1], floats: values(e * c, 62)), "be": NDArray(shape: [e], floats: values(e, 63)),
      "wd": NDArray(shape: [e, 1, kernel, kernel], floats: values(e * kernel * kernel, 64)),
      "wp": NDArray(shape: [c, e, 1, 1], floats: values(c * e, 65)), "bp": NDArray(shape: [c], floats: values(c, 66)),
      "zero": NDArray(shape: [], floats: [0]), "six": NDArray(shape: [], floats: [6]),
    ]
    let pad = kernel / 2
    let means = residual == "k" ? [Node(name: "means", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["k"])] : []
    let nodes = means + [
      Node(name: "c0", opType: "Conv", inputs: ["x", "w0"], outputs: ["c0"], attributes: ["pads": .ints([1, 1, 1, 1])]),
      Node(name: "e", opType: "Conv", inputs: ["c0", "we", "be"], outputs: ["e"]),
      Node(name: "r6", opType: "Clip", inputs: ["e", "zero", "six"], outputs: ["r6"]),
      Node(name: "d", opType: "Conv", inputs: ["r6", "wd"], outputs: ["d"],
           attributes: ["group": .int(e), "kernel_shape": .ints([kernel, kernel]), "pads": .ints([pad, pad, pad, pad])]),
      Node(name: "r", opType: "Relu", inputs: ["d"], outputs: ["r"]),
      Node(name: "p", opType: "Conv", inputs: ["r", "wp", "bp"], outputs: ["p"]),
      Node(name: "sum", opType: "Add", inputs: ["p", residual], outputs: ["s"]),
      Node(name: "relu", opType: "Relu", inputs: ["s"], outputs: ["z"]),
    ]
    return Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["z"], opset: 17)
  }

  /// The sum after a depthwise block's projection, added to each projected
  /// row, against the same block with the Add after it (the projection's
  /// output asked for, so the Add stays): exactly equal through the ring
  /// and through the convolutions one after the other, every instruction
  /// set, 1 and 2 threads; 16 and 24 channels (expanded to 96 and 144), a
  /// 3x3 and a 5x5 window, maps of 7 and 12, two images. Channel means (a
  /// broadcast) add after.
  @Test(arguments: InstructionSet.available)
  func fusedSumAfterADepthwiseBlockEqualsTheAddAfter(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for (channels, kernel, size) in [(16, 3, 12), (24, 5, 7)] {
        for residual in ["c0", "k"] {
          let graph = Self.blockGraph(channels: channels, kernel: kernel, residual: residual)
          let input = ["x": NDArray(shape: [2, channels, size, size],
                                    floats: OpReferenceTests.values(2 * channels * size * size, seed: 68).map { $0 * 2 })]
          for threads in [1, 2] {
            let executor = try Executor(graph: graph, threads: threads)
            let means = residual == "k" ? ["GlobalAveragePool"] : []
            #expect(executor.optimized.nodes.map(\.opType) == means + ["Conv", DepthwiseBlock.opType], "\(residual)")
            for ring in [true, false] {
              try DepthwiseBlock.$forcedFusion.withValue(ring) {
                let expected = try executor.run(input, outputs: ["p", "z"])["z"]!
                let run = try executor.profiledRun(input)
                let path = run.nodes.first { $0.op == DepthwiseBlock.opType }?.path ?? ""
                let what = "\(channels)ch \(kernel)x\(kernel) \(size)px \(residual) threads \(threads) ring \(ring)"
                #expect(path.contains(residual == "k" ? ",add+relu" : "+add+relu"), "\(what): \(path)")
                let check = closeness(run.values["z"]!.floatValues(), expected.floatValues(), rtol: 0, atol: 0)
                #expect(check.isClose, "\(what): \(check)")
              }
            }
          }
        }
      }
    }
  }

  /// One executor over inputs of changing sizes: each fused node keeps
  /// what it derives from its own attributes (two residual sums with
  /// different steps after them, a pooled convolution) and a plan per
  /// input shape, so every run equals the unfused graph's on that input,
  /// whichever shapes ran before it.
  @Test func oneExecutorKeepsEachNodesFusionsAndEachShapesPlan() throws {
    let c = 8, values = OpReferenceTests.values
    let pads: [String: Attribute] = ["pads": .ints([1, 1, 1, 1])]
    let inits = Dictionary(uniqueKeysWithValues: (1...3).map { i in
      ("w\(i)", NDArray(shape: [c, c, 3, 3], floats: values(c * c * 9, 50 + i).map { $0 * 0.5 }))
    })
    let nodes = [
      Node(name: "conv1", opType: "Conv", inputs: ["x", "w1"], outputs: ["a1"], attributes: pads),
      Node(name: "sum1", opType: "Add", inputs: ["a1", "x"], outputs: ["s1"]),
      Node(name: "relu", opType: "Relu", inputs: ["s1"], outputs: ["y1"]),
      Node(name: "conv2", opType: "Conv", inputs: ["y1", "w2"], outputs: ["a2"], attributes: pads),
      Node(name: "sum2", opType: "Add", inputs: ["y1", "a2"], outputs: ["s2"]),
      Node(name: "leaky", opType: "LeakyRelu", inputs: ["s2"], outputs: ["y2"], attributes: ["alpha": .float(0.25)]),
      Node(name: "conv3", opType: "Conv", inputs: ["y2", "w3"], outputs: ["a3"], attributes: pads),
      Node(name: "pool", opType: "MaxPool", inputs: ["a3"], outputs: ["z"],
           attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
    ]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["z"], opset: 17)
    let fused = try Executor(graph: graph)
    #expect(!fused.optimized.nodes.contains { ["Add", "MaxPool", "Relu", "LeakyRelu"].contains($0.opType) })
    let plain = try Executor(graph: graph, optimize: false)
    for (run, (h, w)) in [(9, 11), (16, 16), (9, 11), (6, 13), (16, 16)].enumerated() {
      let input = ["x": NDArray(shape: [1, c, h, w], floats: values(c * h * w, 60 + run))]
      let expected = try plain.run(input)["z"]!
      let actual = try fused.run(input)["z"]!
      #expect(actual.shape == expected.shape, "run \(run), \(h)x\(w)")
      #expect(closeness(actual.floatValues(), expected.floatValues(), rtol: 1e-5, atol: 1e-5).isClose, "run \(run), \(h)x\(w)")
    }
  }
}
