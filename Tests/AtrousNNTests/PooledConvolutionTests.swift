import AtrousCore
@testable import AtrousNN
import AtrousTestSupport
import Testing

/// A MaxPool fused into the convolution before it (`PooledConvolution`)
/// against the two run one after the other, unoptimized.
@Suite struct PooledConvolutionTests {
  /// One case: the convolution (its input made channels-last by a 1x1
  /// convolution before it when `pixelsIn`) with a ReLU, and the pool.
  struct Case: Sendable, CustomStringConvertible {
    var cin: Int, cout: Int, group = 1, kernel: Int, stride: Int, pad: Int
    var n = 1, size: Int, pixelsIn = false
    var pool: [String: Attribute]
    var description: String { "\(cin)->\(cout)/g\(group) k\(kernel) s\(stride) n\(n) \(size)px pixels \(pixelsIn) \(pool)" }
  }

  static let cases: [Case] = [
    // A first convolution: 3 channels of planes, 7x7 at stride 2, a
    // part block of output channels (20), the pool padded (ResNet's stem).
    Case(cin: 3, cout: 20, kernel: 7, stride: 2, pad: 3, n: 2, size: 29,
         pool: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])]),
    // 3x3 at stride 2 unpadded, whole blocks, the pool's last window
    // partly outside the map (ceil_mode: SqueezeNet's and GoogLeNet's).
    Case(cin: 3, cout: 32, kernel: 3, stride: 2, pad: 0, size: 31,
         pool: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "ceil_mode": .int(1)]),
    // Channels-last input in two groups, a 2x2 pool (VGG's), rows of odd
    // length, two images.
    Case(cin: 8, cout: 32, group: 2, kernel: 3, stride: 1, pad: 1, n: 2, size: 13, pixelsIn: true,
         pool: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])]),
    // More than one group of output blocks with a part block (72 = 4 x 16
    // + 8), a 5x5 window, three images, a pool of 3 at stride 3.
    Case(cin: 5, cout: 72, kernel: 5, stride: 1, pad: 2, n: 3, size: 19,
         pool: ["kernel_shape": .ints([3, 3]), "strides": .ints([3, 3])]),
    // Wider than one pass of the kernel (224 pixels) with 8 channels: the
    // buffer's rows are long and few.
    Case(cin: 3, cout: 8, kernel: 3, stride: 1, pad: 1, size: 241,
         pool: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2]), "ceil_mode": .int(1)]),
    // A dilated, overlapping pool with pads on one side only.
    Case(cin: 16, cout: 48, kernel: 3, stride: 1, pad: 1, size: 17, pixelsIn: true,
         pool: ["kernel_shape": .ints([3, 2]), "strides": .ints([1, 2]), "dilations": .ints([2, 1]),
                "pads": .ints([2, 0, 0, 1])]),
  ]

  static func graph(_ c: Case) -> (Graph, [String: NDArray]) {
    let values = OpReferenceTests.values
    return FusionGraph.make(cin: c.cin, n: c.n, size: c.size, pixelsIn: c.pixelsIn, seeds: (33, 34)) { input in
      ([Node(name: "conv", opType: "Conv", inputs: [input, "w", "b"], outputs: ["c"],
             attributes: ["strides": .ints([c.stride, c.stride]), "pads": .ints([c.pad, c.pad, c.pad, c.pad]),
                          "group": .int(c.group)]),
        Node(name: "relu", opType: "Relu", inputs: ["c"], outputs: ["r"]),
        Node(name: "pool", opType: "MaxPool", inputs: ["r"], outputs: ["y"], attributes: c.pool)],
       ["w": NDArray(shape: [c.cout, c.cin / c.group, c.kernel, c.kernel],
                     floats: values(c.cout * c.cin / c.group * c.kernel * c.kernel, 31)),
        "b": NDArray(shape: [c.cout], floats: values(c.cout, 32))])
    }
  }

  /// Every case on every instruction set, 1 and 2 threads, on the blocked
  /// kernel (pooling as it goes) with the buffer the machine's cache gives
  /// and one so small that each chunk is one pooled row (every chunk
  /// keeping rows of the one before), and on the product (pooling after),
  /// each against the unoptimized graph on the same kernel.
  @Test(arguments: InstructionSet.available)
  func fusedPoolEqualsThePoolAfter(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for c in Self.cases {
        let (graph, input) = Self.graph(c)
        for strategy in [Convolution.Strategy.blocked, .im2col] {
          try Convolution.$forcedStrategy.withValue(strategy) {
            let expected = try Executor(graph: graph, threads: 1, optimize: false).run(input)["y"]!
            for threads in [1, 2] {
              let fused = try Executor(graph: graph, threads: threads)
              #expect(fused.optimized.nodes.map(\.opType).suffix(1) == ["Conv"], "\(c)")
              for buffer in [nil, 1] {
                let run = try PooledConvolution.$forcedBufferBytes.withValue(buffer) { try fused.profiledRun(input) }
                // The blocked kernel pools as it goes; where it cannot run
                // (no AVX2), the convolution falls back and pools after.
                let path = run.nodes.last?.path ?? ""
                #expect(path.hasSuffix(path.hasPrefix("blocked") ? "+maxpool" : ",maxpool"), "\(c): \(path)")
                FusionGraph.expectBitEqual(run.values, expected, "\(c) \(strategy) threads \(threads) buffer \(buffer ?? 0)")
              }
            }
          }
        }
      }
    }
  }

  /// The pool stays a node of its own where the convolution's output is
  /// read by something else too, or asked for.
  @Test func onlyASoleReaderIsFused() throws {
    let (graph, input) = Self.graph(Self.cases[0])
    var shared = graph
    shared.nodes.append(Node(name: "other", opType: "Sigmoid", inputs: ["r"], outputs: ["s"]))
    shared.outputs.append("s")
    #expect(GraphOptimizer.optimize(shared, keep: []).nodes.contains { $0.opType == "MaxPool" })
    #expect(GraphOptimizer.optimize(graph, keep: ["r"]).nodes.contains { $0.opType == "MaxPool" })
    #expect(!GraphOptimizer.optimize(graph, keep: []).nodes.contains { $0.opType == "MaxPool" })
    // Asking for the convolution's output runs a variant that keeps it.
    let executor = try Executor(graph: graph, threads: 1)
    let both = try executor.run(input, outputs: ["r", "y"])
    let plain = try Executor(graph: graph, threads: 1, optimize: false).run(input, outputs: ["r", "y"])
    #expect(closeness(both["r"]!.floatValues(), plain["r"]!.floatValues()).isClose)
    #expect(closeness(both["y"]!.floatValues(), plain["y"]!.floatValues()).isClose)
  }
}
