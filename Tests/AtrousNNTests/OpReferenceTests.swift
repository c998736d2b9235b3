import AtrousCore
import Foundation
import Synchronization
import _CKernels
@testable import AtrousNN
import AtrousTestSupport
import Testing

/// Single ops against plain NCHW loops written here, on the edge cases the
/// conformance set does not reach.
@Suite struct OpReferenceTests {
  static func values(_ count: Int, seed: Int) -> [Float] {
    (0..<count).map { Float(($0 * 7919 + seed * 104_729) % 2003) / 1001.5 - 1 }
  }

  /// The floats `storage` holds.
  static func floats(_ storage: AlignedStorage) -> [Float] {
    Array(UnsafeBufferPointer(start: storage.pointer.assumingMemoryBound(to: Float.self),
                              count: storage.byteCount / MemoryLayout<Float>.stride))
  }

  static func run(_ node: Node, inputs: [String: NDArray], initializers: [String: NDArray] = [:], opset: Int = 17,
                  optimize: Bool = true, standardLayout: Bool = true, threads: Int = Parallel.coreCount) throws -> NDArray {
    try run([node], inputs: inputs, initializers: initializers, opset: opset, optimize: optimize,
            standardLayout: standardLayout, threads: threads)
  }

  /// A chain of nodes, the last one's first output.
  static func run(_ nodes: [Node], inputs: [String: NDArray], initializers: [String: NDArray] = [:], opset: Int = 17,
                  optimize: Bool = true, standardLayout: Bool = true, threads: Int = Parallel.coreCount) throws -> NDArray {
    let output = nodes.last!.outputs[0]
    let graph = Graph(nodes: nodes, initializers: initializers,
                      inputs: inputs.keys.sorted().map { Graph.Input(name: $0, shape: []) }, outputs: [output], opset: opset)
    return try Executor(graph: graph, threads: threads, optimize: optimize).run(inputs, standardLayout: standardLayout)[output]!
  }

  /// `body` with the kernels of `isa` and every convolution of a run on
  /// the calling task forced onto `strategy`.
  func forced<T>(_ strategy: Convolution.Strategy, on isa: InstructionSet, _ body: () throws -> T) throws -> T {
    try InstructionSet.with(isa) { try Convolution.$forcedStrategy.withValue(strategy, operation: body) }
  }

  /// The layouts a convolution meets, each taking its own code path.
  enum ConvRoute: CaseIterable, Sendable {
    /// (N, C, H, W) in and out: the product reads and writes planes.
    case planes
    /// (N, C, H, W) in, channels-last out.
    case planesToChannelsLast
    /// Channels-last in and out: im2col rows, or the transposed product.
    case channelsLast
    /// Channels-last in, (N, C, H, W) out, written block by block.
    case channelsLastToPlanes
  }

  struct ConvCase: Sendable, CustomTestStringConvertible {
    var cin: Int, cout: Int, k: (Int, Int), stride: (Int, Int), dilation: (Int, Int), pads: [Int], group: Int
    var testDescription: String { "cin \(cin) cout \(cout) k \(k) s \(stride) d \(dilation) pads \(pads) g \(group)" }
  }

  static let convCases: [ConvCase] = [
    ConvCase(cin: 3, cout: 5, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
    ConvCase(cin: 4, cout: 6, k: (3, 2), stride: (2, 3), dilation: (1, 1), pads: [0, 1, 2, 0], group: 2),
    ConvCase(cin: 6, cout: 6, k: (3, 3), stride: (1, 1), dilation: (2, 3), pads: [2, 3, 2, 3], group: 6),
    ConvCase(cin: 4, cout: 8, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 4),  // multiplier 2
    // Depthwise with stride: planar input rows are split by column phase.
    ConvCase(cin: 8, cout: 8, k: (3, 3), stride: (2, 3), dilation: (1, 2), pads: [1, 2, 0, 1], group: 8),
    ConvCase(cin: 5, cout: 7, k: (1, 1), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 0, 0], group: 1),
    ConvCase(cin: 5, cout: 3, k: (1, 1), stride: (2, 2), dilation: (1, 1), pads: [0, 0, 1, 1], group: 1),
    // 1x1 at stride 1 padded only at the end: an output larger than the
    // input, which planes cannot read as one packed run per plane.
    ConvCase(cin: 6, cout: 5, k: (1, 1), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 1, 2], group: 1),
    // 1x1 products whose last panel is one vector wide (48 = 32 + 16) or
    // a part of two (24): tiles of 16 columns, and stores of part of a row.
    ConvCase(cin: 16, cout: 48, k: (1, 1), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 0, 0], group: 1),
    ConvCase(cin: 8, cout: 24, k: (1, 1), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 0, 0], group: 1),
    ConvCase(cin: 2, cout: 2, k: (5, 5), stride: (3, 1), dilation: (2, 1), pads: [4, 0, 3, 2], group: 1),
    // Output groups of 8, 16 and 24 channels: the transposed product.
    ConvCase(cin: 16, cout: 24, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
    ConvCase(cin: 3, cout: 16, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
    ConvCase(cin: 12, cout: 16, k: (1, 1), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 0, 0], group: 2),
    // 1x1 with 8 outputs per group over 64 inputs: untransposed tiles 8 wide.
    ConvCase(cin: 128, cout: 16, k: (1, 1), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 0, 0], group: 2),
    ConvCase(cin: 9, cout: 40, k: (3, 3), stride: (1, 1), dilation: (2, 2), pads: [2, 2, 2, 2], group: 1),
    // Groups of 8 output channels (RegNet's): the grouped kernel on
    // channels-last input (runs of up to 8 pixels, 7 and 3 among them, and
    // single pixels at the borders; the next rows asked for at stride 2;
    // groups of 8 input channels, as in the first two, unrolled, of 5
    // not), or runs of 8
    // and 5 floats in im2col rows and the transposed product from 72
    // columns.
    ConvCase(cin: 24, cout: 24, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 3),
    ConvCase(cin: 16, cout: 16, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 2),
    ConvCase(cin: 10, cout: 16, k: (3, 5), stride: (1, 2), dilation: (2, 1), pads: [2, 1, 1, 3], group: 2),
    // Runs of 12 and of 6 floats into im2col rows for whole panels of 32.
    ConvCase(cin: 12, cout: 32, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
    ConvCase(cin: 12, cout: 64, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 0, 1, 0], group: 2),
    // At least 16 output channels per group: the channel-blocked direct
    // convolution where the CPU has AVX-512 (three cases above too).
    // Partial input and output blocks (20 in, 40 out as 3 blocks), output
    // groups of 4 + 1 blocks (80), 2 blocks per group at stride 2, and 1
    // block with a 5x5 kernel.
    ConvCase(cin: 20, cout: 40, k: (3, 3), stride: (1, 2), dilation: (2, 1), pads: [2, 0, 1, 3], group: 1),
    ConvCase(cin: 17, cout: 80, k: (2, 3), stride: (3, 1), dilation: (1, 3), pads: [0, 2, 1, 0], group: 1),
    ConvCase(cin: 32, cout: 64, k: (3, 3), stride: (2, 2), dilation: (2, 2), pads: [1, 2, 2, 1], group: 2),
    ConvCase(cin: 16, cout: 16, k: (5, 5), stride: (1, 1), dilation: (1, 1), pads: [2, 2, 2, 2], group: 1),
    // A last block of 8 channels or fewer, computed as 8: alone (8, 5 at a
    // 2x3 kernel) and after a whole block (24).
    ConvCase(cin: 3, cout: 8, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
    ConvCase(cin: 6, cout: 5, k: (2, 3), stride: (1, 1), dilation: (1, 1), pads: [0, 1, 1, 1], group: 1),
    ConvCase(cin: 3, cout: 24, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
    // Depthwise on channels-last pixels with 16 channels or more: four
    // interior pixels at a time, the last 16 channels again for the rest
    // of 20.
    ConvCase(cin: 20, cout: 20, k: (3, 3), stride: (1, 2), dilation: (2, 1), pads: [2, 1, 2, 1], group: 20),
    ConvCase(cin: 16, cout: 16, k: (5, 5), stride: (2, 2), dilation: (1, 1), pads: [2, 2, 2, 2], group: 16),
    // Winograd F(4x4, 3x3) (chosen from 16 output tiles, forced below):
    // tiles cut by the map's edge, asymmetric padding, 40 = 16 + 16 + 8
    // output channels, and no padding with 20 input channels.
    ConvCase(cin: 32, cout: 40, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 0, 2, 1], group: 1),
    ConvCase(cin: 20, cout: 16, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 0, 0], group: 1),
    // Blocks of 64 channels along the row, the last block of 8 computed as
    // the last 16 channels again; the pixels' input loaded once per kernel
    // row (eight pixels of 16 channels with AVX-512; eight of 8 with AVX2,
    // four at 5x5 stride 2; four of 8 without) for 5x5 and 3x3 at stride 1
    // and 3x3 at stride 2, 20 channels as 8, 8 and the last 8 again.
    ConvCase(cin: 72, cout: 72, k: (5, 5), stride: (1, 1), dilation: (1, 1), pads: [2, 2, 2, 2], group: 72),
    ConvCase(cin: 32, cout: 32, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 32),
    ConvCase(cin: 24, cout: 24, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [0, 1, 1, 0], group: 24),
    ConvCase(cin: 20, cout: 20, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 20),
    // The same with a rest of channels at 5x5 and at stride 2, and kernels
    // of an even and of one row (the kernel rows' sums taken in pairs).
    ConvCase(cin: 44, cout: 44, k: (5, 5), stride: (1, 1), dilation: (1, 1), pads: [2, 2, 2, 2], group: 44),
    ConvCase(cin: 28, cout: 28, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 28),
    ConvCase(cin: 36, cout: 36, k: (2, 5), stride: (1, 1), dilation: (1, 1), pads: [1, 2, 0, 2], group: 36),
    ConvCase(cin: 16, cout: 16, k: (1, 3), stride: (1, 1), dilation: (1, 1), pads: [0, 1, 0, 1], group: 16),
    // 7x7 at stride 1 (ConvNeXt's) slides too where registers hold 8
    // floats or fewer, with a rest of channels; 5x5 at stride 2 with one;
    // 8 to 15 channels slide 8 at a time there (one pixel at a time with
    // AVX-512), 10 as 8 and the last 8 again.
    ConvCase(cin: 28, cout: 28, k: (7, 7), stride: (1, 1), dilation: (1, 1), pads: [3, 3, 3, 3], group: 28),
    ConvCase(cin: 40, cout: 40, k: (5, 5), stride: (2, 2), dilation: (1, 1), pads: [2, 1, 2, 1], group: 40),
    ConvCase(cin: 8, cout: 8, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 8),
    ConvCase(cin: 10, cout: 10, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 10),
    // Fewer than 16 channels: 8 at a time, 12 as 8 and the last 8 again
    // (PP-OCR's first block, stride 2 down the rows only), 9 likewise with
    // a dilated 5x5 kernel.
    ConvCase(cin: 12, cout: 12, k: (3, 3), stride: (2, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 12),
    ConvCase(cin: 9, cout: 9, k: (5, 5), stride: (1, 1), dilation: (1, 2), pads: [2, 4, 2, 4], group: 9),
  ]

  /// Small images, and one wide enough that whole panels of 32 pixels fit
  /// inside its rows and wrap from one row to the next.
  static let convSizes: [(n: Int, h: Int, w: Int)] = [(2, 11, 9), (1, 13, 75)]

  @Test(arguments: convCases, ConvRoute.allCases)
  func convMatchesNaiveLoops(_ c: ConvCase, route: ConvRoute) throws {
    for (n, h, w) in Self.convSizes { try checkConv(c, route: route, n: n, h: h, w: w) }
  }

  /// Every strategy a convolution can take on this machine, forced, on
  /// planes and on channels-last input, with the kernels of every
  /// instruction set the CPU has, against the same plain loops.
  @Test(arguments: Convolution.Strategy.allCases, InstructionSet.available)
  func everyConvStrategyMatchesNaiveLoops(_ strategy: Convolution.Strategy, isa: InstructionSet) throws {
    try forced(strategy, on: isa) {
      for c in Self.convCases {
        // With fused steps: each kernel's epilogue reaches every output
        // channel, in its blocks or in place (ReLU, Clip and HardSwish as
        // the depthwise row stores its sums; HardSwish after kernels wider
        // than 3 where registers hold 8 floats or fewer, and LeakyRelu, in
        // a pass after).
        for (route, step) in [(ConvRoute.planesToChannelsLast, FusedStep.clip), (.channelsLast, .leaky), (.channelsLast, .relu),
                              (.planesToChannelsLast, .hardswish)] {
          try checkConv(c, route: route, n: 1, h: 13, w: 75, checkLayout: false, step: step)
        }
      }
    }
    // The strategy is taken: a depthwise convolution forced onto pixels
    // leaves planes channels-last, where by itself it keeps them planes.
    let depthwise = Node(name: "dw", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: ["group": .int(4)])
    let inputs = ["x": NDArray(shape: [1, 4, 5, 5], floats: Self.values(100, seed: 4))]
    let weights = ["w": NDArray(shape: [4, 1, 3, 3], floats: Self.values(36, seed: 5))]
    let output = try Convolution.$forcedStrategy.withValue(strategy) {
      try Self.run(depthwise, inputs: inputs, initializers: weights, standardLayout: false)
    }
    if strategy == .depthwise || strategy == .depthwisePlanes { #expect(output.channelsLast == (strategy == .depthwise)) }
  }

  /// The grouped kernel (groups of 8 output channels) on rows whose
  /// interior leaves runs of every length from 1 to 8 pixels, at stride 1
  /// and at stride 2 (where it asks for the next rows ahead), with 8 and 5
  /// input channels a group, on every instruction set the CPU has.
  @Test(arguments: InstructionSet.available)
  func groupedRunsMatchNaiveLoops(isa: InstructionSet) throws {
    let cases = [
      ConvCase(cin: 16, cout: 16, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 2),
      ConvCase(cin: 10, cout: 16, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 2),
    ]
    try forced(.grouped, on: isa) {
      for c in cases {
        // Stride 1 leaves w - 2 interior pixels, stride 2 about half.
        for w in c.stride.1 == 1 ? Array(3...12) : Array(stride(from: 5, through: 23, by: 2)) {
          try checkConv(c, route: .channelsLast, n: 1, h: 5, w: w, checkLayout: false, step: .relu)
        }
      }
    }
  }

  /// Many output channels for few pixels (7x7, over 1M multiply-adds):
  /// with two threads or more (asked for here, whatever the machine has)
  /// the threads split the weight panels instead of the pixels, for 1x1
  /// and, as im2col rows, for 3x3.
  @Test func fewPixelsManyChannelsMatchNaiveLoops() throws {
    let cases = [
      ConvCase(cin: 128, cout: 200, k: (1, 1), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 0, 0], group: 1),
      ConvCase(cin: 64, cout: 136, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
    ]
    // A 1x1 convolution over one or four pixels (a squeeze-excitation
    // block's) streams the weight rows, output channels split across
    // threads.
    let pointwise = ConvCase(cin: 96, cout: 40, k: (1, 1), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 0, 0], group: 1)
    for (h, w) in [(1, 1), (2, 2)] {
      for threads in [1, 2, 3] {
        try checkConv(pointwise, route: .channelsLast, n: 1, h: h, w: w, threads: threads)
        try checkConv(pointwise, route: .planes, n: 1, h: h, w: w, checkLayout: false, threads: threads)
      }
    }
    // Weights over 512 KiB (a classifier's 1x1 convolution): 169 and 289
    // pixels per pass of the product, each one block of rows.
    let classifier = ConvCase(cin: 288, cout: 520, k: (1, 1), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 0, 0], group: 1)
    for size in [13, 17] { try checkConv(classifier, route: .channelsLast, n: 1, h: size, w: size, threads: 1) }
    for c in cases {
      for threads in [2, 3] {
        try checkConv(c, route: .channelsLast, n: 1, h: 7, w: 7, threads: threads)
        try Convolution.$forcedStrategy.withValue(.im2col) {
          try checkConv(c, route: .channelsLast, n: 1, h: 7, w: 7, checkLayout: false, threads: threads)
        }
      }
    }
  }

  /// Depthwise convolutions over input maps of fewer than 128 pixels with
  /// threads to share: each thread takes whole panels of 32 channels over
  /// all the rows (ranges ending in a part panel of 8, and a range not a
  /// multiple of 64, whose last block is computed as its last 16 channels
  /// again), through the padded rows' ring and without it, with a step
  /// the stores take and one (LeakyRelu) in a pass over each range after,
  /// on every instruction set the CPU has, 7x7 kernels over a 7x7 map
  /// and dilated 3x3 and 5x5 among them; maps of 14x14 and 20x20 keep
  /// their bands of rows.
  @Test(arguments: InstructionSet.available)
  func depthwiseChannelSharesMatchNaiveLoops(isa: InstructionSet) throws {
    let cases: [(ConvCase, n: Int, h: Int, w: Int)] = [
      (ConvCase(cin: 232, cout: 232, k: (5, 5), stride: (1, 1), dilation: (1, 1), pads: [2, 2, 2, 2], group: 232), 1, 7, 7),
      // Two images of 7x7 (98 pixels): every share runs over both.
      (ConvCase(cin: 232, cout: 232, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 232), 2, 7, 7),
      (ConvCase(cin: 1160, cout: 1160, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1160), 1, 9, 9),
      (ConvCase(cin: 264, cout: 264, k: (3, 3), stride: (1, 1), dilation: (2, 2), pads: [2, 2, 2, 2], group: 264), 1, 11, 11),
      // LR-ASPP's dilated 5x5 (its blocks of 8 pixels slide along the even
      // and the odd pixels of each row), 96 channels: one block of 64 and
      // the last 16 channels twice.
      (ConvCase(cin: 96, cout: 96, k: (5, 5), stride: (1, 1), dilation: (2, 2), pads: [4, 4, 4, 4], group: 96), 1, 20, 20),
      // The same on 40 channels (16, 16, then the last 16 again) over rows
      // of 27 outputs, and a 3x3 dilated along the rows only, over two
      // images.
      (ConvCase(cin: 40, cout: 40, k: (5, 5), stride: (1, 1), dilation: (2, 2), pads: [4, 4, 4, 4], group: 40), 1, 13, 27),
      (ConvCase(cin: 24, cout: 24, k: (3, 3), stride: (1, 1), dilation: (1, 2), pads: [1, 2, 1, 2], group: 24), 2, 10, 30),
      (ConvCase(cin: 200, cout: 200, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 0, 0], group: 200), 1, 8, 9),
      (ConvCase(cin: 136, cout: 136, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 136), 1, 14, 14),
      // ConvNeXt's last stage: 7x7 over a 7x7 map, every row padded.
      (ConvCase(cin: 104, cout: 104, k: (7, 7), stride: (1, 1), dilation: (1, 1), pads: [3, 3, 3, 3], group: 104), 1, 7, 7),
    ]
    try forced(.depthwise, on: isa) {
      for (c, n, h, w) in cases {
        for threads in [2, 3] {
          for step in [FusedStep.relu, .hardswish, .leaky] {
            try checkConv(c, route: .channelsLast, n: n, h: h, w: w, checkLayout: false, threads: threads, step: step)
          }
        }
      }
    }
  }

  /// Depthwise convolutions on planes over rows of every width the row's
  /// blocks of vectors split differently (blocks of 8, 4 or 2 vectors of
  /// 16 by instruction set, then half as many, then one, each last block
  /// overlapping the one before, then single outputs), at stride 1 and 2
  /// and dilated, on every instruction set the CPU has, against the plain
  /// loops.
  @Test(arguments: InstructionSet.available)
  func depthwisePlaneRowsMatchNaiveLoops(isa: InstructionSet) throws {
    let cases = [
      ConvCase(cin: 3, cout: 3, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 3),
      ConvCase(cin: 2, cout: 2, k: (5, 5), stride: (2, 2), dilation: (1, 1), pads: [2, 2, 2, 2], group: 2),
      ConvCase(cin: 2, cout: 2, k: (3, 3), stride: (1, 1), dilation: (2, 3), pads: [2, 3, 2, 3], group: 2),
    ]
    try forced(.depthwisePlanes, on: isa) {
      for c in cases {
        for w in [15, 16, 33, 64, 100, 127, 128, 150, 200, 257, 300] {
          try checkConv(c, route: .planes, n: 1, h: 4, w: w, checkLayout: false)
        }
      }
    }
  }

  /// Every Winograd tile, forced, with the kernels of every instruction
  /// set the CPU has: edge tiles, asymmetric padding, channels that are
  /// not a multiple of 16, more input channels than one block of the
  /// product's depth, maps smaller than a tile, dilation and stride 2,
  /// against the plain loops.
  @Test(arguments: [2, 4, 6], InstructionSet.available)
  func everyWinogradTileMatchesNaiveLoops(tile: Int, isa: InstructionSet) throws {
    let cases = [
      ConvCase(cin: 32, cout: 40, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 0, 2, 1], group: 1),
      ConvCase(cin: 20, cout: 16, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [0, 0, 0, 0], group: 1),
      ConvCase(cin: 272, cout: 72, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
      // Output channels that fill neither a panel of 32 nor a group of 8
      // (the weights are transformed 8 channels at a time, panel by panel).
      ConvCase(cin: 24, cout: 37, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
      // Dilated: one convolution per phase, tiles of pixels that far apart,
      // phases past the map's edge, and unequal dilations and padding.
      ConvCase(cin: 32, cout: 24, k: (3, 3), stride: (1, 1), dilation: (2, 2), pads: [2, 2, 2, 2], group: 1),
      ConvCase(cin: 16, cout: 40, k: (3, 3), stride: (1, 1), dilation: (3, 2), pads: [3, 0, 1, 2], group: 1),
      // A dilation wider than a small map: phases whose tiles hold no
      // output pixel at all.
      ConvCase(cin: 16, cout: 24, k: (3, 3), stride: (1, 1), dilation: (5, 4), pads: [5, 4, 5, 4], group: 1),
      // Fewer than 16 channels (a space-to-depth stem's 12): Winograd where
      // vectors hold 8 floats, the 4 past the first 8 taken with the 4
      // before them again; direct with AVX-512, whose transforms take 16.
      ConvCase(cin: 12, cout: 8, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
    ] + (tile != 4 ? [] : [
      // Stride 2 (F(4x4) alone): four phases of the input, each position's
      // product as deep as the phases it keeps; odd and even map sizes,
      // asymmetric and no padding, output channels past a panel, and four
      // phases of 272 channels deeper than one block of the product.
      ConvCase(cin: 32, cout: 40, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
      ConvCase(cin: 20, cout: 16, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [0, 0, 0, 0], group: 1),
      ConvCase(cin: 24, cout: 37, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 0, 2, 1], group: 1),
      ConvCase(cin: 272, cout: 72, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
      ConvCase(cin: 10, cout: 12, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1),
      // 4x4 at stride 1: F(3x3, 4x4).
      ConvCase(cin: 16, cout: 24, k: (4, 4), stride: (1, 1), dilation: (1, 1), pads: [1, 2, 2, 1], group: 1),
      // 7x7 at stride 2 (a stem): F(3x3, 4x4) over the space-to-depth of
      // 3 channels (12: where the transforms take 8 channels at once) and 4
      // (16), even and asymmetric padding.
      ConvCase(cin: 3, cout: 16, k: (7, 7), stride: (2, 2), dilation: (1, 1), pads: [3, 3, 3, 3], group: 1),
      ConvCase(cin: 4, cout: 20, k: (7, 7), stride: (2, 2), dilation: (1, 1), pads: [3, 2, 1, 3], group: 1),
    ])
    try forced(.winograd, on: isa) {
      try WinogradTile.$forced.withValue(tile) {
        for c in cases {
          try checkConv(c, route: .channelsLast, n: 1, h: 13, w: 17, checkLayout: false)
          // Fewer blocks of tiles than threads: the products split by tile
          // position, also into parts the positions do not divide into.
          try checkConv(c, route: .planesToChannelsLast, n: 2, h: 7, w: 9, checkLayout: false, threads: 2)
          try checkConv(c, route: .channelsLast, n: 1, h: 7, w: 7, checkLayout: false, threads: 3)
          // A map smaller than one tile, three images.
          try checkConv(c, route: .channelsLast, n: 3, h: 3, w: 5, checkLayout: false, threads: 2)
          // Fewer blocks than twice the threads: weights within twice
          // the L2 cache, one block per thread of as many tiles as the
          // share (16 tiles at F(4x4): 8 and 6 at 2 and 3 threads); more
          // (272 -> 72: 2.8 MiB at F(4x4)), one block split by position.
          try checkConv(c, route: .channelsLast, n: 1, h: 13, w: 13, checkLayout: false, threads: 2)
          try checkConv(c, route: .channelsLast, n: 1, h: 13, w: 13, checkLayout: false, threads: 3)
          if c.cin < 100 {
            // Enough tiles for a block per thread: blocks split across threads.
            try checkConv(c, route: .channelsLast, n: 1, h: 70, w: 64, checkLayout: false, threads: 2)
          }
          if c.dilation != (1, 1) {
            // A fused step runs on each tile row's pixels, dilation apart.
            try checkConv(c, route: .channelsLast, n: 2, h: 19, w: 23, checkLayout: false, step: .leaky)
          }
        }
      }
    }
  }

  /// Winograd weights transformed by several threads, each a share of the
  /// panels of 32 output channels (the last a part panel, zeros past the
  /// last channel) and, with fewer panels than threads, of the input
  /// channels, equal those one thread transforms, bit for bit, at every
  /// tile and stride and on every instruction set.
  @Test(arguments: InstructionSet.available)
  func winogradWeightsDoNotDependOnTheThreads(isa: InstructionSet) {
    for (cin, cout) in [(16, 16), (24, 37), (32, 72), (20, 130)] {
      for (stride, tile) in [(1, 2), (1, 4), (1, 6), (2, 4)] {
        var kernel = Self.windowKernel(cin, cout, taps: 3, stride: stride)
        kernel.weights = Self.values(cout * cin * 9, seed: cout)  // (Cout, Cin, 3, 3)
        let one = InstructionSet.with(isa) { Self.floats(kernel.winogradWeights(tile: tile, threads: 1)) }
        for threads in [2, 3, 8] {
          let shared = InstructionSet.with(isa) { Self.floats(kernel.winogradWeights(tile: tile, threads: threads)) }
          let differing = zip(shared, one).filter { $0.bitPattern != $1.bitPattern }.count
          #expect(shared.count == one.count && differing == 0,
                  "\(cin)->\(cout) F\(tile) stride \(stride) \(threads) threads: \(differing) of \(one.count) differ")
        }
      }
    }
  }

  /// Product panels packed by several threads, each a share of the panels
  /// (from `parallelPackFloats` packed floats; smaller weights stay on one
  /// thread), equal those one thread packs, bit for bit, and those equal
  /// `atr_pack_b` of the (taps x Cin/g, Cout/g) matrix written out: 1x1
  /// and 3x3 kernels, shared and not, a part panel last, two groups, on
  /// every instruction set.
  @Test(arguments: InstructionSet.available)
  func productPanelsDoNotDependOnTheThreads(isa: InstructionSet) {
    for (cin, cout, side, group) in [(256, 300, 1, 1), (40, 200, 3, 1), (600, 33, 1, 1), (64, 200, 3, 2), (5, 7, 3, 1)] {
      var kernel = Self.windowKernel(cin, cout, taps: side, group: group)
      let (cinG, coutG, taps) = (cin / group, cout / group, side * side)
      let k = taps * cinG
      kernel.weights = Self.values(cout * cinG * taps, seed: cout + side)  // (Cout, Cin/g, side, side)
      for g in 0..<group {
        var b = [Float](repeating: 0, count: k * coutG)  // (taps x Cin/g, Cout/g)
        for co in 0..<coutG {
          for ci in 0..<cinG {
            for t in 0..<taps { b[(t * cinG + ci) * coutG + co] = kernel.weights[((g * coutG + co) * cinG + ci) * taps + t] }
          }
        }
        var expected = [Float](repeating: .nan, count: atr_packed_b_size(k, coutG))
        expected.withUnsafeMutableBufferPointer { atr_pack_b($0.baseAddress!, b, k, coutG, coutG) }
        // Each packing into memory just given back full of NaN (which the
        // allocator hands out next), so that a float left unwritten shows.
        func packed(threads: Int) -> [Float] {
          _ = Tensor(shape: [expected.count], repeating: .nan)
          return InstructionSet.with(isa) { kernel.productPanels(group: g, threads: threads).scalars }
        }
        let one = packed(threads: 1)
        #expect(one.map(\.bitPattern) == expected.map(\.bitPattern), "\(isa) \(cin)->\(cout) \(side)x\(side) group \(g)")
        for threads in [2, 3, 8] {
          let shared = packed(threads: threads)
          #expect(shared.map(\.bitPattern) == one.map(\.bitPattern),
                  "\(isa) \(cin)->\(cout) \(side)x\(side) group \(g), \(threads) threads")
        }
      }
    }
  }

  /// Transformed weights too large for the cache (256 -> 256 at F(4x4):
  /// 9 MiB) take blocks of as many tiles as 16 MiB of transformed input
  /// and products hold, so that each position's weights are read once for
  /// all of them; weights that fit keep blocks that fit half the L2 cache.
  @Test func winogradBlocksFollowTheWeightsSize() {
    let positions = 36, bytes = MemoryLayout<Float>.stride
    let rows = Int(atr_sgemm_tile_rows())
    // 49 tiles (28x28): one block, rounded up to whole product tiles.
    #expect(ConvKernel.winogradBlock(cin: 512, cout: 512, tiles: 49, positions: positions, threads: 1) == (49 + rows - 1) / rows * rows)
    let streamed = ConvKernel.winogradBlock(cin: 256, cout: 256, tiles: 3136, positions: positions, threads: 1)
    #expect(streamed * positions * 512 * bytes <= ConvKernel.streamedBlockBytes + rows * positions * 512 * bytes)
    #expect(streamed * positions * 512 * bytes > ConvKernel.streamedBlockBytes / 2)
    let cached = ConvKernel.winogradBlock(cin: 64, cout: 64, tiles: 3136, positions: positions, threads: 1)
    #expect(cached * positions * 128 * bytes <= max(CPUCaches.l2 / 2, 8 * positions * 128 * bytes) + rows * positions * 128 * bytes)
  }

  /// The cache rule for Winograd's weights on the caches of CPUs it was
  /// measured on and others: VGG16's 128-channel weights at F(4x4) (2.3
  /// MiB) stay cached where L2 or L3 hold them (measured faster on the Xeon
  /// and the EPYC), 256 channels' (9.4 MiB) stream on all of them (measured
  /// 1.4 to 3 times faster on both), 64 channels' (0.6 MiB) stay cached
  /// everywhere.
  /// The tile rule on VGG16's 3x3 layers (`winogradCost`, `f6Fits`) on
  /// the caches of the CPUs it was measured on: F(4x4) from 56 to 14,
  /// F(2x2) for 512 channels at 7x7, and at 224, and at 112 where its
  /// weights fit, F(6x6) on the AMD EPYC of family 23 (512 KiB L2, 8 MiB
  /// L3; 0.90 of F(4x4)'s time there). On the Intel Xeon (2 MiB L2, 105 MiB
  /// L3) and the EPYC of family 25 (1 MiB L2, 32 MiB L3) the two tied at
  /// 224 and for 64 -> 128 at 112, and the costs are within 1% of each
  /// other with the Xeon's caches, so either passes there.
  @Test(arguments: [(512 << 10, 8 << 20, true), (2 << 20, 105 << 20, false), (1 << 20, 32 << 20, false)])
  func winogradTilesForVGG16Layers(l2: Int, l3: Int, f6Measured: Bool) {
    let layers = [(64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56), (256, 256, 56), (256, 512, 28),
                  (512, 512, 28), (512, 512, 14), (512, 512, 7)]
    for (cin, cout, size) in layers {
      let kernel = Self.windowKernel(cin, cout, taps: 3, size: size)
      let f6 = size == 224 || (size == 112 && ConvKernel.f6Fits(cin: cin, cout: cout, l2: l2, l3: l3))
      let expected: Set<Int> = switch size {
      case 7: [2]
      case _ where f6: f6Measured ? [6] : [4, 6]
      default: [4]
      }
      let tile = kernel.winogradTile(l2: l2, l3: l3)
      #expect(tile.map(expected.contains) == true, "\(cin)->\(cout) at \(size): F\(tile.map(String.init) ?? "-")")
    }
  }

  /// At stride 2 the rule takes F(4x4) where there are tiles enough to
  /// share its weights' reads (ResNet-18's 64 -> 128 at 28x28 out: 0.87 of
  /// the direct product's time in the network, YOLOX's from 160x160 down
  /// to 20x20 0.60 to 0.78, AMD EPYC, AVX2) and runs direct where a few
  /// tiles would read 81 weights per pair of channels for 9 (256 -> 512 at
  /// 7x7 out: 4 tiles).
  @Test func winogradAtStride2FollowsTheTiles() {
    #expect(Self.windowKernel(64, 128, taps: 3, size: 56, stride: 2).winogradTile == 4)
    #expect(Self.windowKernel(32, 64, taps: 3, size: 320, stride: 2).winogradTile == 4)
    #expect(Self.windowKernel(256, 512, taps: 3, size: 14, stride: 2).winogradTile == nil)
    // YOLOX-S's stem, 12 -> 32 at 320x320: where the transforms take 8
    // channels at once; AVX-512's take 16.
    let stem = Self.windowKernel(12, 32, taps: 3, size: 320)
    #expect((stem.winogradTile != nil) == (atr_winograd_lanes() <= 12))
    // Dilated at stride 2, or strides that differ: direct.
    let strided = WindowAxis(input: 56, kernel: 3, stride: 2, dilation: 1, padBegin: 1, padEnd: 1, output: 28)
    var dilated = strided, plain = strided
    (dilated.dilation, dilated.output) = (2, 27)
    (plain.stride, plain.output) = (1, 56)
    for axes in [[dilated, dilated], [strided, plain]] {
      let kernel = ConvKernel(n: 1, cin: 64, cout: 64, group: 1, axes: axes, weights: [], bias: nil)
      #expect(!kernel.winogradFits && kernel.winogradTile == nil)
    }
  }

  /// Where F(6x6) is a candidate on other machines' caches than this
  /// one's (the Intel Xeon's and the AMD EPYC's as cpuid and as sysfs
  /// report its L3, a Zen 4/5-like one, small cores): 64 channels
  /// everywhere, 128 -> 256 (8 MiB of weights, where F(6x6) lost on both
  /// measured machines) nowhere.
  @Test func f6CandidatesAcrossMachines() {
    let kib = 1024, mib = 1024 * 1024
    let machines = [("Intel Xeon", 2 * mib, 105 * mib), ("AMD EPYC, cpuid", 512 * kib, 64 * mib),
                    ("AMD EPYC, sysfs", 512 * kib, 8 * mib), ("Zen 4/5", mib, 32 * mib), ("small cores", 256 * kib, 4 * mib)]
    for (name, l2, l3) in machines {
      #expect(ConvKernel.f6Fits(cin: 64, cout: 64, l2: l2, l3: l3), "\(name)")
      #expect(!ConvKernel.f6Fits(cin: 128, cout: 256, l2: l2, l3: l3), "\(name)")
      #expect(!ConvKernel.f6Fits(cin: 256, cout: 256, l2: l2, l3: l3), "\(name)")
    }
  }

  @Test func winogradWeightsCacheRuleAcrossMachines() {
    let bytes = { (channels: Int) in 36 * channels * channels * MemoryLayout<Float>.stride }
    let kib = 1024, mib = 1024 * 1024
    // (name, L2, L3, 128 channels cached)
    let machines = [("Intel Xeon", 2 * mib, 105 * mib, true), ("AMD EPYC (Zen)", 512 * kib, 8 * mib, true),
                    ("Zen 4/5", mib, 32 * mib, true), ("small cores", 256 * kib, 4 * mib, false)]
    for (name, l2, l3, cached128) in machines {
      #expect(ConvKernel.weightsCached(bytes: bytes(64), l2: l2, l3: l3), "\(name): 64 channels")
      #expect(ConvKernel.weightsCached(bytes: bytes(128), l2: l2, l3: l3) == cached128, "\(name): 128 channels")
      #expect(!ConvKernel.weightsCached(bytes: bytes(256), l2: l2, l3: l3), "\(name): 256 channels")
    }
  }

  /// The block rule over every tile size, channel counts from 16 to 1024
  /// and maps from one tile to 112x112 of them, whatever this machine's
  /// caches, on every instruction set: blocks are whole multiples of the
  /// product's tile rows (8 or 6); weights that do not stay
  /// in cache get blocks of at least half what `streamedBlockBytes` holds (or every
  /// tile, or each thread's share) and no more than it holds; other
  /// weights get blocks that fit
  /// half the L2 (or 8 tiles).
  @Test(arguments: [16, 36, 64], [1, 2])
  func winogradBlocksKeepTheirBoundsEverywhere(positions: Int, threads: Int) {
    let bytes = MemoryLayout<Float>.stride
    for isa in InstructionSet.available {
      InstructionSet.with(isa) {
        let rows = Int(atr_sgemm_tile_rows())
        for (cin, cout) in [(16, 24), (64, 64), (128, 128), (272, 72), (256, 256), (512, 512), (1024, 1024)] {
          for tiles in [1, 7, 49, 784, 12544] {
            let block = ConvKernel.winogradBlock(cin: cin, cout: cout, tiles: tiles, positions: positions, threads: threads)
            let perTile = positions * (cin + cout) * bytes, label = "\(isa): \(cin)->\(cout), \(tiles) tiles"
            #expect(block >= rows && block % rows == 0, "\(label)")
            if !ConvKernel.weightsCached(bytes: positions * cin * cout * bytes) {
              let preferred = max(8, ConvKernel.streamedBlockBytes / perTile / 8 * 8)
              #expect(block * perTile <= max(ConvKernel.streamedBlockBytes, 8 * perTile) + rows * perTile, "\(label)")
              // With threads, the tiles are first shared out evenly.
              let share = ((tiles + threads - 1) / threads + rows - 1) / rows * rows
              #expect(block >= min(share, preferred / 2), "\(label)")
            } else {
              #expect(block * perTile <= max(CPUCaches.l2 / 2, 8 * perTile) + rows * perTile, "\(label)")
            }
          }
        }
      }
    }
  }

  /// Winograd with more input channels than one block of the product's
  /// depth (272 > 256) and more output channels than one panel row of
  /// tiles, forced, on maps whose tiles the edges cut.
  @Test func winogradAcrossProductBlocksMatchesNaiveLoops() throws {
    let c = ConvCase(cin: 272, cout: 72, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], group: 1)
    try Convolution.$forcedStrategy.withValue(.winograd) {
      try checkConv(c, route: .channelsLast, n: 1, h: 9, w: 10, checkLayout: false)
      try checkConv(c, route: .channelsLast, n: 2, h: 5, w: 6, checkLayout: false, threads: 2)
    }
  }

  /// One executor fed maps of different sizes keeps a convolution plan per
  /// size (few tiles run direct, many run Winograd): each run equals a
  /// fresh executor's, also when a size comes back.
  @Test func convolutionPlansFollowTheInputShape() throws {
    let node = Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["y"],
                    attributes: ["pads": .ints([1, 1, 1, 1])])
    let initializers = ["w": NDArray(shape: [24, 16, 3, 3], floats: Self.values(24 * 16 * 9, seed: 40)),
                        "b": NDArray(shape: [24], floats: Self.values(24, seed: 41))]
    let graph = Graph(nodes: [node], initializers: initializers, inputs: [Graph.Input(name: "x", shape: [])],
                      outputs: ["y"], opset: 17)
    let reused = try Executor(graph: graph)
    for size in [7, 20, 7, 33] {
      let x = ["x": NDArray(shape: [1, 16, size, size], floats: Self.values(16 * size * size, seed: size))]
      let once = try Executor(graph: graph).run(x)["y"]!
      let again = try reused.run(x)["y"]!
      #expect(again.shape == [1, 24, size, size] && again.floatValues() == once.floatValues(), "\(size)x\(size)")
    }
  }

  /// An activation after a convolution, which the optimizer fuses into
  /// the kernel's epilogue.
  enum FusedStep {
    /// LeakyRelu, slope 0.25.
    case leaky
    case relu
    /// Clip to [-0.3, 0.4].
    case clip
    case hardswish

    static let (slope, low, high): (Float, Float, Float) = (0.25, -0.3, 0.4)

    var node: Node {
      switch self {
      case .leaky: Node(name: "step", opType: "LeakyRelu", inputs: ["c"], outputs: ["y"], attributes: ["alpha": .float(Self.slope)])
      case .relu: Node(name: "step", opType: "Relu", inputs: ["c"], outputs: ["y"])
      case .clip: Node(name: "step", opType: "Clip", inputs: ["c", "low", "high"], outputs: ["y"])
      case .hardswish: Node(name: "step", opType: "HardSwish", inputs: ["c"], outputs: ["y"])
      }
    }

    func callAsFunction(_ x: Float) -> Float {
      switch self {
      case .leaky: x < 0 ? Self.slope * x : x
      case .relu: max(0, x)
      case .clip: min(max(x, Self.low), Self.high)
      case .hardswish: x * min(max(x / 6 + 0.5, 0), 1)
      }
    }
  }

  /// - Parameter step: an activation after the convolution, fused into it.
  func checkConv(_ c: ConvCase, route: ConvRoute, n: Int, h: Int, w: Int, checkLayout: Bool = true,
                 threads: Int = Parallel.coreCount, step: FusedStep? = nil) throws {
    let x = Self.values(n * c.cin * h * w, seed: 1), weights = Self.values(c.cout * (c.cin / c.group) * c.k.0 * c.k.1, seed: 2)
    let bias = Self.values(c.cout, seed: 3)
    let node = Node(name: "conv", opType: "Conv", inputs: ["x", "w", "b"], outputs: [step == nil ? "y" : "c"], attributes: [
      "kernel_shape": .ints([c.k.0, c.k.1]), "strides": .ints([c.stride.0, c.stride.1]),
      "dilations": .ints([c.dilation.0, c.dilation.1]), "pads": .ints(c.pads), "group": .int(c.group),
    ])
    let input = NDArray(shape: [n, c.cin, h, w], floats: x)
    let channelsLastInput = route == .channelsLast || route == .channelsLastToPlanes
    let planesOut = route == .planes || route == .channelsLastToPlanes
    let nodes = [node] + (step.map { [$0.node] } ?? [])
    var initializers = [
      "w": NDArray(shape: [c.cout, c.cin / c.group, c.k.0, c.k.1], floats: weights), "b": NDArray(shape: [c.cout], floats: bias),
    ]
    if step == .clip {
      (initializers["low"], initializers["high"]) = (NDArray(shape: [], floats: [FusedStep.low]), NDArray(shape: [], floats: [FusedStep.high]))
    }
    let output = try Self.run(nodes, inputs: ["x": channelsLastInput ? input.toChannelsLast() : input], initializers: initializers,
                              standardLayout: planesOut, threads: threads)
    let oh = (h + c.pads[0] + c.pads[2] - c.dilation.0 * (c.k.0 - 1) - 1) / c.stride.0 + 1
    let ow = (w + c.pads[1] + c.pads[3] - c.dilation.1 * (c.k.1 - 1) - 1) / c.stride.1 + 1
    // A depthwise convolution keeps planes as planes whatever is asked,
    // unless its output rows are narrower than a vector of 16.
    let depthwise = c.group == c.cin && c.cout == c.cin
    if checkLayout { #expect(output.channelsLast == !(planesOut || (depthwise && !channelsLastInput && ow >= 16))) }
    #expect(output.shape == [n, c.cout, oh, ow])
    var expected = Self.reference(c, x: x, weights: weights, bias: bias, n: n, h: h, w: w, oh: oh, ow: ow)
    if let step { expected = expected.map(step.callAsFunction) }
    // A float32 sum of K products of values in [-1, 1] can be off by about
    // K * 2^-24 in any order; twice that, and never under 1e-5.
    let k = c.cin / c.group * c.k.0 * c.k.1
    var atol = max(1e-5, Float(k) * 1.2e-7)
    let values = output.floatValues()
    let lanes = Int(atr_winograd_lanes()), undilated = c.dilation == (1, 1)
    let fits: Bool = switch c.k {
    case (3, 3): c.cin >= lanes && (c.stride == (1, 1) || (c.stride == (2, 2) && undilated))
    case (4, 4): c.cin >= lanes && c.stride == (1, 1) && undilated
    case (7, 7): 4 * c.cin >= lanes && c.stride == (2, 2) && undilated
    default: false
    }
    if fits && c.group == 1 && c.cout >= lanes {
      // Winograd (F(2x2), F(4x4) or F(6x6), F(3x3, 4x4)) may run: its transforms round
      // more, within 5e-5 of the output's range at worst and 1e-5 relative
      // RMS error. (F(6x6)'s transforms scale by up to 32 and 1/90, but its
      // kernels are transformed in float64 and rounded once.)
      let range = (expected.max() ?? 0) - (expected.min() ?? 0)
      atol = max(atol, 5e-5 * range)
      let error = zip(values, expected).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
      let energy = expected.reduce(0.0) { $0 + Double($1) * Double($1) }
      #expect((error / energy).squareRoot() <= 1e-5, "\(route) \(n)x\(h)x\(w): relative RMS error")
    }
    let check = closeness(values, expected, rtol: 1e-5, atol: atol)
    #expect(check.isClose, "\(route) \(n)x\(h)x\(w): \(check)")
  }

  /// The plain loops' output (float64 sums) for a case and input size,
  /// computed once per test run: the same inputs (fixed seeds) go through
  /// every strategy and instruction set, and the loops dominate the tests'
  /// time in a debug build.
  static func reference(_ c: ConvCase, x: [Float], weights: [Float], bias: [Float], n: Int, h: Int, w: Int, oh: Int,
                        ow: Int) -> [Float] {
    let key = "\(c.testDescription) \(n)x\(h)x\(w)"
    if let known = references.withLock({ $0[key] }) { return known }
    var expected = [Float](repeating: 0, count: n * c.cout * oh * ow)
    let cinG = c.cin / c.group, coutG = c.cout / c.group
    for b in 0..<n { for co in 0..<c.cout { for oy in 0..<oh { for ox in 0..<ow {
      var sum = Double(bias[co])
      let g = co / coutG
      for ci in 0..<cinG { for ky in 0..<c.k.0 { for kx in 0..<c.k.1 {
        let iy = oy * c.stride.0 - c.pads[0] + ky * c.dilation.0, ix = ox * c.stride.1 - c.pads[1] + kx * c.dilation.1
        if iy < 0 || iy >= h || ix < 0 || ix >= w { continue }
        sum += Double(x[((b * c.cin + g * cinG + ci) * h + iy) * w + ix])
          * Double(weights[((co * cinG + ci) * c.k.0 + ky) * c.k.1 + kx])
      } } }
      expected[((b * c.cout + co) * oh + oy) * ow + ox] = Float(sum)
    } } } }
    references.withLock { $0[key] = expected }
    return expected
  }

  static let references = Mutex<[String: [Float]]>([:])

  @Test(arguments: [(2, 1, 0, 0), (2, 2, 1, 1), (3, 1, 2, 0), (1, 2, 0, 0)])
  func convTransposeMatchesScatter(stride: Int, dilation: Int, pad: Int, outputPadding: Int) throws {
    let (cin, cout, group, k, h, w) = (4, 6, 2, 3, 5, 4)
    let x = Self.values(cin * h * w, seed: 4), weights = Self.values(cin * (cout / group) * k * k, seed: 5)
    let node = Node(name: "deconv", opType: "ConvTranspose", inputs: ["x", "w"], outputs: ["y"], attributes: [
      "kernel_shape": .ints([k, k]), "strides": .ints([stride, stride]), "dilations": .ints([dilation, dilation]),
      "pads": .ints([pad, pad, pad, pad]), "output_padding": .ints([outputPadding, outputPadding]), "group": .int(group),
    ])
    let output = try Self.run(node, inputs: ["x": NDArray(shape: [1, cin, h, w], floats: x)],
                              initializers: ["w": NDArray(shape: [cin, cout / group, k, k], floats: weights)])
    let oh = (h - 1) * stride + dilation * (k - 1) + 1 + outputPadding - 2 * pad
    let ow = (w - 1) * stride + dilation * (k - 1) + 1 + outputPadding - 2 * pad
    #expect(output.shape == [1, cout, oh, ow])
    var expected = [Float](repeating: 0, count: cout * oh * ow)
    let cinG = cin / group, coutG = cout / group
    for ci in 0..<cin { for iy in 0..<h { for ix in 0..<w { for co in 0..<coutG { for ky in 0..<k { for kx in 0..<k {
      let oy = iy * stride - pad + ky * dilation, ox = ix * stride - pad + kx * dilation
      if oy < 0 || oy >= oh || ox < 0 || ox >= ow { continue }
      let g = ci / cinG
      expected[((g * coutG + co) * oh + oy) * ow + ox] += x[(ci * h + iy) * w + ix] * weights[((ci * coutG + co) * k + ky) * k + kx]
    } } } } } }
    #expect(closeness(output.floatValues(), expected, rtol: 1e-5, atol: 1e-5).isClose)
  }

  /// Transposed convolutions whose kernel sides are multiples of their
  /// strides run by output phases (`TransposedConvKernel.runPhased`):
  /// against the plain scatter loops, on every instruction set, 1 and 2
  /// threads, with unequal strides and kernels, pads on some sides only,
  /// output padding (pixels no input reaches, left at the bias), two
  /// images, with and without a bias; and the general way on the same
  /// cases agrees.
  @Test(arguments: InstructionSet.available)
  func convTransposeByPhasesMatchesScatter(isa: InstructionSet) throws {
    // (cin, cout, kernel, strides, pads (top, left, bottom, right), output padding, n, size, bias)
    let cases: [(Int, Int, (Int, Int), (Int, Int), [Int], (Int, Int), Int, (Int, Int), Bool)] = [
      (16, 8, (4, 4), (2, 2), [1, 1, 1, 1], (0, 0), 1, (9, 7), true),
      (5, 19, (4, 6), (2, 3), [0, 1, 2, 0], (1, 2), 2, (6, 5), true),
      (8, 16, (2, 2), (2, 2), [0, 0, 0, 0], (0, 0), 1, (11, 12), false),
      (3, 4, (3, 2), (3, 1), [2, 0, 1, 1], (0, 0), 1, (4, 6), true),
    ]
    try InstructionSet.with(isa) {
      for (index, (cin, cout, k, stride, pads, outputPadding, n, size, hasBias)) in cases.enumerated() {
        let (h, w) = size
        let x = Self.values(n * cin * h * w, seed: 90 + index), weights = Self.values(cin * cout * k.0 * k.1, seed: 95 + index)
        let bias = Self.values(cout, seed: 99)
        let oh = (h - 1) * stride.0 + k.0 + outputPadding.0 - pads[0] - pads[2]
        let ow = (w - 1) * stride.1 + k.1 + outputPadding.1 - pads[1] - pads[3]
        var expected = [Float](repeating: 0, count: n * cout * oh * ow)
        for b in 0..<n { for co in 0..<cout { for p in 0..<(oh * ow) { expected[(b * cout + co) * oh * ow + p] = hasBias ? bias[co] : 0 } } }
        for b in 0..<n { for ci in 0..<cin { for iy in 0..<h { for ix in 0..<w { for co in 0..<cout {
          for ky in 0..<k.0 { for kx in 0..<k.1 {
            let oy = iy * stride.0 - pads[0] + ky, ox = ix * stride.1 - pads[1] + kx
            if oy < 0 || oy >= oh || ox < 0 || ox >= ow { continue }
            expected[((b * cout + co) * oh + oy) * ow + ox] +=
              x[((b * cin + ci) * h + iy) * w + ix] * weights[((ci * cout + co) * k.0 + ky) * k.1 + kx]
          } }
        } } } } }
        let node = Node(name: "up", opType: "ConvTranspose", inputs: hasBias ? ["x", "w", "b"] : ["x", "w"], outputs: ["y"],
                        attributes: ["kernel_shape": .ints([k.0, k.1]), "strides": .ints([stride.0, stride.1]),
                                     "pads": .ints(pads), "output_padding": .ints([outputPadding.0, outputPadding.1])])
        let initializers = ["w": NDArray(shape: [cin, cout, k.0, k.1], floats: weights), "b": NDArray(shape: [cout], floats: bias)]
        let kernel = TransposedConvKernel(n: n, height: h, width: w, cin: cin, cout: cout, group: 1, kernel: [k.0, k.1],
                                          strides: [stride.0, stride.1], dilations: [1, 1], padBegin: [pads[0], pads[1]],
                                          outputSize: [oh, ow], bias: nil)
        #expect(kernel.phased, "case \(index)")
        // Dilated, grouped, or a kernel side its stride does not divide: the general way.
        // (k.0 + 1 is not a multiple of any stride.0 here.)
        for (dilations, group, side) in [([2, 1], 1, k.0), ([1, 1], cin, k.0), ([1, 1], 1, k.0 + 1)] {
          let other = TransposedConvKernel(n: n, height: h, width: w, cin: cin, cout: cout * group, group: group,
                                           kernel: [side, k.1], strides: [stride.0, stride.1], dilations: dilations,
                                           padBegin: [pads[0], pads[1]], outputSize: [oh, ow], bias: nil)
          #expect(!other.phased, "case \(index): dilations \(dilations) group \(group) kernel \(side)")
        }
        for gather in [false, true] {
          for threads in [1, 2] {
            let output = try TransposedConvKernel.$forcedGather.withValue(gather) {
              try Self.run(node, inputs: ["x": NDArray(shape: [n, cin, h, w], floats: x)], initializers: initializers,
                           threads: threads)
            }
            #expect(output.shape == [n, cout, oh, ow], "case \(index)")
            let check = closeness(output.floatValues(), expected, rtol: 1e-5, atol: 1e-5)
            #expect(check.isClose, "case \(index) gather \(gather) threads \(threads): \(check)")
          }
        }
      }
    }
  }

  /// Softmax and LogSoftmax over the last axis against plain Double loops:
  /// rows shorter than a vector, with a rest after whole vectors, enough of
  /// them to split across threads, and rows longer than a block of the
  /// copy into new storage; large values (the largest is subtracted first)
  /// and a row of equal values.
  @Test func softmaxRowsMatchNaive() throws {
    for (rows, length) in [(3, 5), (4, 37), (70, 1000), (3, 9000)] {
      var x = Self.values(rows * length, seed: 80).map { $0 * 30 }
      x[0] = 88
      for k in 0..<length { x[length + k] = 0.25 }
      for op in ["Softmax", "LogSoftmax"] {
        let node = Node(name: "s", opType: op, inputs: ["x"], outputs: ["y"], attributes: ["axis": .int(-1)])
        let output = try Self.run(node, inputs: ["x": NDArray(shape: [rows, length], floats: x)], threads: 2)
        var expected: [Float] = []
        for r in 0..<rows {
          let row = x[(r * length)..<((r + 1) * length)].map(Double.init)
          let peak = row.max()!, sum = row.reduce(0) { $0 + Foundation.exp($1 - peak) }
          expected += row.map { Float(op == "Softmax" ? Foundation.exp($0 - peak) / sum : $0 - peak - Foundation.log(sum)) }
        }
        #expect(closeness(output.floatValues(), expected, rtol: 1e-5, atol: 1e-6).isClose, "\(op) \(rows)x\(length)")
      }
    }
  }

  /// Softmax and LogSoftmax over an axis before the last (the channels of
  /// a map) against plain Double loops: few columns, columns across more
  /// than one block with a partial one, several outer indices, axis of
  /// length 1, large values, and one or two threads.
  @Test func softmaxAcrossAnAxisMatchesNaive() throws {
    for (shape, axis) in [([2, 5, 3], 1), ([1, 64, 7, 43], 1), ([3, 4, 1, 300], 1), ([2, 1, 9], 1), ([4, 6, 5], 0)] {
      let (outer, length) = (shape[..<axis].reduce(1, *), shape[axis])
      let inner = shape[(axis + 1)...].reduce(1, *)
      var x = Self.values(shape.reduce(1, *), seed: 81).map { $0 * 30 }
      x[0] = 88
      for op in ["Softmax", "LogSoftmax"] {
        for threads in [1, 2] {
          let node = Node(name: "s", opType: op, inputs: ["x"], outputs: ["y"], attributes: ["axis": .int(axis)])
          let output = try Self.run(node, inputs: ["x": NDArray(shape: shape, floats: x)], threads: threads)
          var expected = [Float](repeating: 0, count: x.count)
          for o in 0..<outer {
            for i in 0..<inner {
              let at = (0..<length).map { o * length * inner + $0 * inner + i }
              let column = at.map { Double(x[$0]) }
              let peak = column.max()!, sum = column.reduce(0) { $0 + Foundation.exp($1 - peak) }
              for (k, index) in at.enumerated() {
                expected[index] = Float(op == "Softmax" ? Foundation.exp(column[k] - peak) / sum : column[k] - peak - Foundation.log(sum))
              }
            }
          }
          #expect(output.shape == shape)
          #expect(closeness(output.floatValues(), expected, rtol: 1e-5, atol: 1e-6).isClose, "\(op) \(shape) axis \(axis) threads \(threads)")
        }
      }
    }
  }

  /// Max and average pooling (with padding, ceil mode, counting the
  /// padding or not) against plain loops, with 3, 24 and 70 channels: the
  /// vector paths take 64 and 16 channels at a time and the last 16 again
  /// for a rest.
  @Test(arguments: [(false, false), (true, false), (true, true), (false, true)])
  func poolMatchesNaive(ceil: Bool, includePad: Bool) throws {
    for (op, c) in [("AveragePool", 3), ("AveragePool", 24), ("AveragePool", 70), ("MaxPool", 24), ("MaxPool", 70)] {
      let max = op == "MaxPool"
      let (h, w, k, s, p) = (10, 7, 3, 2, 1)
      let x = Self.values(c * h * w, seed: 6)
      var attributes: [String: Attribute] = [
        "kernel_shape": .ints([k, k]), "strides": .ints([s, s]), "pads": .ints([p, p, p, p]), "ceil_mode": .int(ceil ? 1 : 0),
      ]
      if !max { attributes["count_include_pad"] = .int(includePad ? 1 : 0) }
      let node = Node(name: "pool", opType: op, inputs: ["x"], outputs: ["y"], attributes: attributes)
      let output = try Self.run(node, inputs: ["x": NDArray(shape: [1, c, h, w], floats: x)])
      func size(_ n: Int) -> Int {
        let span = n + 2 * p - k
        var out = (ceil ? (span + s - 1) / s : span / s) + 1
        if ceil && (out - 1) * s >= n + p { out -= 1 }
        return out
      }
      let (oh, ow) = (size(h), size(w))
      #expect(output.shape == [1, c, oh, ow])
      var expected: [Float] = []
      for ch in 0..<c { for oy in 0..<oh { for ox in 0..<ow {
        var sum: Float = 0, peak = -Float.infinity, valid = 0, padded = 0
        for ky in 0..<k { for kx in 0..<k {
          let iy = oy * s - p + ky, ix = ox * s - p + kx
          if iy >= -p && iy < h + p && ix >= -p && ix < w + p { padded += 1 }
          if iy >= 0 && iy < h && ix >= 0 && ix < w {
            sum += x[(ch * h + iy) * w + ix]
            peak = Swift.max(peak, x[(ch * h + iy) * w + ix])
            valid += 1
          }
        } }
        expected.append(max ? peak : sum / Float(includePad ? padded : valid))
      } } }
      #expect(closeness(output.floatValues(), expected, rtol: 1e-6, atol: 1e-6).isClose, "\(op) \(c)")
    }
  }

  /// Max pooling at unit stride, which takes each column's maximum down
  /// the window first, 16 channels at a time from windows 5 wide, whole
  /// pixels below where the buffer holds them: windows of 2 to 13,
  /// padding on some sides or none, rows wider than one pass (64 output
  /// columns; 18 at 400 channels), 16 to 400 channels (the last 16 again
  /// for a rest) and 1400 (the general loop), against plain loops on every
  /// instruction set.
  @Test(arguments: InstructionSet.available)
  func unitStrideMaxPoolMatchesNaive(isa: InstructionSet) throws {
    // (kernel, pads top, left, bottom, right, channels, height, width)
    let cases = [(3, [1, 1, 1, 1], 24, 6, 10), (5, [0, 0, 0, 0], 70, 5, 75), (5, [2, 2, 2, 2], 16, 7, 70),
                 (13, [6, 6, 6, 6], 40, 9, 20), (2, [0, 1, 1, 0], 24, 4, 9), (5, [0, 4, 1, 0], 16, 5, 130),
                 (3, [1, 1, 1, 1], 400, 4, 40), (3, [1, 0, 1, 2], 1400, 3, 5)]
    for (k, pads, c, h, w) in cases {
      let x = Self.values(c * h * w, seed: k + c)
      let node = Node(name: "pool", opType: "MaxPool", inputs: ["x"], outputs: ["y"],
                      attributes: ["kernel_shape": .ints([k, k]), "pads": .ints(pads)])
      let output = try InstructionSet.with(isa) {
        try Self.run(node, inputs: ["x": NDArray(shape: [1, c, h, w], floats: x).toChannelsLast()])
      }
      let (oh, ow) = (h + pads[0] + pads[2] - k + 1, w + pads[1] + pads[3] - k + 1)
      #expect(output.shape == [1, c, oh, ow])
      var expected: [Float] = []
      for ch in 0..<c { for oy in 0..<oh { for ox in 0..<ow {
        var peak = -Float.infinity
        for ky in 0..<k { for kx in 0..<k {
          let iy = oy - pads[0] + ky, ix = ox - pads[1] + kx
          if iy >= 0 && iy < h && ix >= 0 && ix < w { peak = Swift.max(peak, x[(ch * h + iy) * w + ix]) }
        } }
        expected.append(peak)
      } } }
      #expect(output.floatValues() == expected, "\(isa) \(k)x\(k) \(pads) \(c) channels \(h)x\(w)")
    }
  }

  /// The global pools (and ReduceMean and ReduceSum over H and W, which
  /// share their code) over maps large enough for threads to share: each
  /// thread sums or takes the max of its band of every image's rows into
  /// a partial of its own, the partials combined after; on 1, 2 and 3
  /// threads (bands of unequal heights), two images, against Double loops.
  /// A window pool over such a map splits its output rows likewise.
  @Test func poolsSplitAcrossThreadsMatchNaive() throws {
    // Also maps of fewer rows than threads (two bands at 3 threads, or one).
    for (n, c, h, w) in [(3, 24, 2, 250), (1, 40, 1, 300)] {
      let x = Self.values(n * c * h * w, seed: 13)
      let input = ["x": NDArray(shape: [n, c, h, w], floats: x).toChannelsLast()]
      let expected = (0..<n * c).map { i in Float((0..<h * w).map { Double(x[i * h * w + $0]) }.reduce(0, +) / Double(h * w)) }
      for threads in [1, 2, 3] {
        let node = Node(name: "p", opType: "GlobalAveragePool", inputs: ["x"], outputs: ["y"])
        let output = try Self.run(node, inputs: input, threads: threads)
        #expect(closeness(output.floatValues(), expected, rtol: 1e-5, atol: 1e-6).isClose, "\(h) rows, \(threads) threads")
      }
    }
    let (n, c, h, w) = (2, 70, 31, 17)  // 73,780 floats
    let x = Self.values(n * c * h * w, seed: 12)
    let input = ["x": NDArray(shape: [n, c, h, w], floats: x).toChannelsLast()]
    for (op, attributes) in [("GlobalAveragePool", [String: Attribute]()), ("GlobalMaxPool", [:]),
                             ("ReduceMean", ["axes": .ints([2, 3]), "keepdims": .int(1)]),
                             ("ReduceSum", ["axes": .ints([2, 3]), "keepdims": .int(1)])] {
      var expected: [Float] = []
      for b in 0..<n {
        for ch in 0..<c {
          let column = (0..<h * w).map { Double(x[(b * c + ch) * h * w + $0]) }
          let sum = column.reduce(0, +)
          expected.append(Float(op == "GlobalMaxPool" ? column.max()! : op == "ReduceSum" ? sum : sum / Double(h * w)))
        }
      }
      for threads in [1, 2, 3] {
        let opset = op == "ReduceSum" ? 11 : 17  // axes as an attribute
        let node = Node(name: "p", opType: op, inputs: ["x"], outputs: ["y"], attributes: attributes)
        let output = try Self.run(node, inputs: input, opset: opset, threads: threads)
        #expect(output.shape == [n, c, 1, 1])
        #expect(closeness(output.floatValues(), expected, rtol: 1e-5, atol: 1e-6).isClose, "\(op), \(threads) threads")
      }
    }
    let pool = Node(name: "p", opType: "MaxPool", inputs: ["x"], outputs: ["y"],
                    attributes: ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1])])
    let one = try Self.run(pool, inputs: input, threads: 1)
    var expected: [Float] = []
    for b in 0..<n { for ch in 0..<c { for oy in 0..<16 { for ox in 0..<9 {
      var peak = -Float.infinity
      for ky in 0..<3 { for kx in 0..<3 {
        let (iy, ix) = (oy * 2 - 1 + ky, ox * 2 - 1 + kx)
        if iy >= 0 && iy < h && ix >= 0 && ix < w { peak = max(peak, x[((b * c + ch) * h + iy) * w + ix]) }
      } }
      expected.append(peak)
    } } } }
    #expect(one.shape == [n, c, 16, 9] && one.floatValues() == expected)
    for threads in [2, 3] { #expect(try Self.run(pool, inputs: input, threads: threads).floatValues() == expected) }
  }

  /// Broadcasting between a channels-last conv output and standard-layout
  /// operands of lower rank equals broadcasting in NCHW.
  @Test func mixedLayoutBroadcastingMatchesStandard() throws {
    let x = NDArray(shape: [1, 4, 3, 5], floats: Self.values(60, seed: 7))
    let channels = NDArray(shape: [4, 1, 1], floats: [1, -2, 3, 0.5])
    let row = NDArray(shape: [5], floats: [0.1, 0.2, 0.3, 0.4, 0.5])
    let nhwc = x.toChannelsLast()
    for other in [channels, row, NDArray(shape: [], floats: [2])] {
      let node = Node(name: "mul", opType: "Mul", inputs: ["a", "b"], outputs: ["y"])
      let standard = try Self.run(node, inputs: ["a": x, "b": other])
      let mixed = try Self.run(node, inputs: ["a": nhwc, "b": other])
      #expect(mixed.shape == standard.shape)
      #expect(mixed.floatValues() == standard.floatValues())
    }
    let concat = Node(name: "cat", opType: "Concat", inputs: ["a", "b"], outputs: ["y"], attributes: ["axis": .int(1)])
    let plain = try Self.run(concat, inputs: ["a": x, "b": x])
    let mixed = try Self.run(concat, inputs: ["a": nhwc, "b": x])
    #expect(mixed.shape == [1, 8, 3, 5] && mixed.floatValues() == plain.floatValues())
  }

  /// Concat of channels-last maps along every axis, with parts of 1, 5,
  /// 16, 37 and no channels (whole vectors, their rest, and an empty
  /// part), on 1 and 2 threads, against the same parts as planes.
  @Test func channelsLastConcatEqualsPlanes() throws {
    // 2 x 64 x 71 pixels of 59 channels: enough to share out to threads.
    let (n, h, w) = (2, 64, 71)
    let widths = [1, 5, 16, 0, 37]
    let parts = widths.enumerated().map { index, c in
      NDArray(shape: [n, c, h, w], floats: Self.values(n * c * h * w, seed: 90 + index))
    }
    let names = widths.indices.map { "p\($0)" }
    for axis in 0..<4 {
      // Other axes must agree: along axis != 1 every part takes 8 channels.
      let inputs = axis == 1 ? parts : widths.indices.map { index in
        var shape = [n, 8, h, w]
        shape[axis] = [1, 3, 2, 4, 5][index]
        return NDArray(shape: shape, floats: Self.values(shape.reduce(1, *), seed: 95 + index))
      }
      let concat = Node(name: "cat", opType: "Concat", inputs: names, outputs: ["y"], attributes: ["axis": .int(axis)])
      for threads in [1, 2] {
        let planes = try Self.run(concat, inputs: Dictionary(uniqueKeysWithValues: zip(names, inputs)), threads: threads)
        let pixels = try Self.run(concat, inputs: Dictionary(uniqueKeysWithValues: zip(names, inputs.map { $0.toChannelsLast() })),
                                  threads: threads)
        #expect(pixels.shape == planes.shape && pixels.floatValues() == planes.floatValues(), "axis \(axis), \(threads) threads")
      }
    }
  }

  /// Concat of one image's planes along the channels on two threads (the
  /// blocks cut into pieces across them: parts longer than a piece, with a
  /// rest, and an empty one) against the parts' values one after another.
  @Test func concatOfOneImageSplitsItsCopies() throws {
    let (h, w) = (64, 130)
    let widths = [20, 0, 3, 17]
    let parts = widths.enumerated().map { index, c in NDArray(shape: [1, c, h, w], floats: Self.values(c * h * w, seed: 70 + index)) }
    let names = widths.indices.map { "p\($0)" }
    let concat = Node(name: "cat", opType: "Concat", inputs: names, outputs: ["y"], attributes: ["axis": .int(1)])
    let y = try Self.run(concat, inputs: Dictionary(uniqueKeysWithValues: zip(names, parts)), threads: 2)
    #expect(y.shape == [1, widths.reduce(0, +), h, w])
    #expect(y.floatValues() == parts.flatMap { $0.floatValues() })
  }

  /// Add and Mul with the smaller operand first (a squeeze-excitation
  /// gate times the map; the larger operand takes the result) against a
  /// plain loop, on planes and on channels-last maps, the operands left as
  /// they were.
  @Test func smallerOperandFirstMatchesLoop() throws {
    let (c, h, w) = (20, 3, 5)
    let x = NDArray(shape: [1, c, h, w], floats: Self.values(c * h * w, seed: 8))
    let gate = NDArray(shape: [1, c, 1, 1], floats: Self.values(c, seed: 9))
    let (xv, gv) = (x.floatValues(), gate.floatValues())
    for (op, apply) in [("Mul", { (a: Float, b: Float) in a * b }), ("Add", { (a: Float, b: Float) in a + b })] {
      let expected = (0..<c * h * w).map { apply(gv[$0 / (h * w)], xv[$0]) }
      let node = Node(name: "op", opType: op, inputs: ["g", "x"], outputs: ["y"])
      for map in [x, x.toChannelsLast()] {
        let output = try Self.run(node, inputs: ["g": gate, "x": map], standardLayout: true)
        #expect(output.shape == [1, c, h, w])
        #expect(output.floatValues() == expected, "\(op)")
        #expect(map.floatValues() == xv && gate.floatValues() == gv)
      }
    }
  }

  @Test(arguments: ["half_pixel", "align_corners", "asymmetric", "pytorch_half_pixel"])
  func linearResizeMatchesFormula(mode: String) throws {
    let (h, w, oh, ow) = (4, 5, 7, 3)
    let x = Self.values(h * w, seed: 8)
    let node = Node(name: "resize", opType: "Resize", inputs: ["x", "", "", "sizes"], outputs: ["y"], attributes: [
      "mode": .string("linear"), "coordinate_transformation_mode": .string(mode),
    ])
    let output = try Self.run(node, inputs: ["x": NDArray(shape: [1, 1, h, w], floats: x)],
                              initializers: ["sizes": NDArray(shape: [4], int64s: [1, 1, Int64(oh), Int64(ow)])])
    func source(_ i: Int, _ n: Int, _ m: Int) -> Double {
      let scale = Double(m) / Double(n)
      switch mode {
      case "align_corners": return m == 1 ? 0 : Double(i) * Double(n - 1) / Double(m - 1)
      case "asymmetric": return Double(i) / scale
      default: return (Double(i) + 0.5) / scale - 0.5
      }
    }
    var expected: [Float] = []
    for oy in 0..<oh { for ox in 0..<ow {
      let sy = min(max(source(oy, h, oh), 0), Double(h - 1)), sx = min(max(source(ox, w, ow), 0), Double(w - 1))
      let y0 = Int(sy), x0 = Int(sx), y1 = min(y0 + 1, h - 1), x1 = min(x0 + 1, w - 1)
      let fy = Float(sy - Double(y0)), fx = Float(sx - Double(x0))
      let top = x[y0 * w + x0] * (1 - fx) + x[y0 * w + x1] * fx, bottom = x[y1 * w + x0] * (1 - fx) + x[y1 * w + x1] * fx
      expected.append(top * (1 - fy) + bottom * fy)
    } }
    #expect(closeness(output.floatValues(), expected, rtol: 1e-5, atol: 1e-6).isClose)
  }

  /// A Resize whose output leaves the graph in (N, C, H, W) writes planes
  /// itself; its values are those of the channels-last resize the run
  /// makes when the output may stay channels-last, bit for bit (an
  /// infinite input included), from inputs in either layout: upsampling
  /// by whole and fractional scales, downsampling, nearest and linear, two
  /// images, on every instruction set the CPU has.
  @Test(arguments: InstructionSet.available)
  func resizeToPlanesEqualsChannelsLast(isa: InstructionSet) throws {
    let (n, c, h, w) = (2, 5, 6, 7)
    var x = Self.values(n * c * h * w, seed: 12)
    x[17] = .infinity
    let input = NDArray(shape: [n, c, h, w], floats: x)
    for (mode, coordinates) in [("linear", "half_pixel"), ("linear", "align_corners"), ("nearest", "asymmetric")] {
      for (oh, ow) in [(48, 56), (13, 10), (3, 4), (6, 7)] {
        let node = Node(name: "resize", opType: "Resize", inputs: ["x", "", "", "sizes"], outputs: ["y"], attributes: [
          "mode": .string(mode), "coordinate_transformation_mode": .string(coordinates),
        ])
        let sizes = ["sizes": NDArray(shape: [4], int64s: [Int64(n), Int64(c), Int64(oh), Int64(ow)])]
        for map in [input, input.toChannelsLast()] {
          let (planes, pixels) = try InstructionSet.with(isa) {
            (try Self.run(node, inputs: ["x": map], initializers: sizes, standardLayout: true),
             try Self.run(node, inputs: ["x": map], initializers: sizes, standardLayout: false))
          }
          #expect(!planes.channelsLast && pixels.channelsLast)
          #expect(planes.floatValues().map(\.bitPattern) == pixels.standard().floatValues().map(\.bitPattern),
                  "\(isa) \(mode) \(coordinates) \(oh)x\(ow)")
        }
      }
    }
  }

  @Test func foldedBatchNormEqualsUnfolded() throws {
    var net = NetworkBuilder(channels: 3, seed: 9)
    let conv = net.conv2D(net.input, filters: 8, kernel: 3, padding: .same)
    let bn = net.batchNorm(conv)
    var graph = net.graph(outputs: [bn])
    // Non-trivial statistics, so folding has something to fold.
    graph.initializers["bn2.mean"] = NDArray(shape: [8], floats: Self.values(8, seed: 10))
    graph.initializers["bn2.var"] = NDArray(shape: [8], floats: Self.values(8, seed: 11).map { $0 * $0 + 0.1 })
    graph.initializers["bn2.scale"] = NDArray(shape: [8], floats: Self.values(8, seed: 12))
    let input = ["input": NDArray(shape: [1, 3, 9, 9], floats: Self.values(243, seed: 13))]
    let folded = try Executor(graph: graph, optimize: true)
    let unfolded = try Executor(graph: graph, optimize: false)
    #expect(folded.optimized.nodes.count == 1 && unfolded.optimized.nodes.count == 2)
    let a = try folded.run(input)[bn]!.floatValues(), b = try unfolded.run(input)[bn]!.floatValues()
    #expect(closeness(a, b, rtol: 1e-5, atol: 1e-5).isClose)
  }

  /// A bias kept apart from its Conv (Add of a Reshape of a constant to
  /// (1, C, 1, 1), or a (C, 1, 1) constant first) joins the Conv's bias,
  /// with or without one of its own; an Add of a constant that varies over
  /// the pixels, or of a per-channel constant to a Conv output read
  /// elsewhere too, stays an Add. Each equals the unoptimized graph.
  @Test(arguments: [(0, true), (1, false), (2, true), (3, false)])
  func foldedConvBiasEqualsUnfolded(variant: Int, convBias: Bool) throws {
    let c = 6
    var inits: [String: NDArray] = [
      "w": NDArray(shape: [c, 3, 3, 3], floats: Self.values(c * 27, seed: 30)), "cb": NDArray(shape: [c], floats: Self.values(c, seed: 31)),
      "b": NDArray(shape: [c], floats: Self.values(c, seed: 32)), "shape": NDArray(shape: [4], int64s: [1, Int64(c), 1, 1]),
      "bc11": NDArray(shape: [c, 1, 1], floats: Self.values(c, seed: 33)),
      "pixels": NDArray(shape: [1, c, 7, 7], floats: Self.values(c * 49, seed: 34)),
    ]
    if !convBias { inits["cb"] = nil }
    var nodes = [Node(name: "conv", opType: "Conv", inputs: ["x", "w"] + (convBias ? ["cb"] : []), outputs: ["c"],
                      attributes: ["pads": .ints([1, 1, 1, 1])])]
    var outputs = ["y"]
    switch variant {
    case 0:
      nodes += [Node(name: "r", opType: "Reshape", inputs: ["b", "shape"], outputs: ["rb"]),
                Node(name: "add", opType: "Add", inputs: ["c", "rb"], outputs: ["y"])]
    case 1: nodes.append(Node(name: "add", opType: "Add", inputs: ["bc11", "c"], outputs: ["y"]))
    case 2: nodes.append(Node(name: "add", opType: "Add", inputs: ["c", "pixels"], outputs: ["y"]))
    default:
      nodes.append(Node(name: "add", opType: "Add", inputs: ["c", "bc11"], outputs: ["y"]))
      outputs.append("c")
    }
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: outputs, opset: 17)
    let input = ["x": NDArray(shape: [1, 3, 7, 7], floats: Self.values(147, seed: 35))]
    let folded = try Executor(graph: graph, optimize: true), unfolded = try Executor(graph: graph, optimize: false)
    // Folded, the Conv reads a bias made for it (an Add of other values
    // may still join it as a residual sum).
    let biasFolded = folded.optimized.nodes.contains { $0.inputs.contains { $0.hasSuffix("\u{0}bias.bias") } }
    #expect(biasFolded == (variant < 2), "variant \(variant)")
    #expect(folded.optimized.nodes.count == (variant < 2 ? 1 : unfolded.optimized.nodes.count - (variant == 2 ? 1 : 0)))
    let a = try folded.run(input), b = try unfolded.run(input)
    for name in outputs {
      #expect(closeness(a[name]!.floatValues(), b[name]!.floatValues(), rtol: 1e-5, atol: 1e-5).isClose, "variant \(variant) \(name)")
    }
  }

  /// The same fold for a 1-D convolution (weights (C, Cin, k)) and its
  /// bias as a (C, 1) constant, and for a 3-D one with a (1, C, 1, 1, 1)
  /// bias: equal to the unoptimized graph, the Add gone.
  @Test(arguments: [1, 3])
  func foldedConvBiasOfOtherRanksEqualsUnfolded(dims: Int) throws {
    let (c, cin, size) = (5, 3, 6)
    let kernel = [Int](repeating: 3, count: dims), spatial = [Int](repeating: size, count: dims)
    let taps = kernel.reduce(1, *), pixels = spatial.reduce(1, *)
    let graph = Graph(nodes: [
      Node(name: "conv", opType: "Conv", inputs: ["x", "w"], outputs: ["c"],
           attributes: ["pads": .ints([Int](repeating: 1, count: 2 * dims))]),
      Node(name: "add", opType: "Add", inputs: ["c", "b"], outputs: ["y"]),
    ], initializers: [
      "w": NDArray(shape: [c, cin] + kernel, floats: Self.values(c * cin * taps, seed: 36)),
      "b": NDArray(shape: dims == 1 ? [c, 1] : [1, c] + [Int](repeating: 1, count: dims), floats: Self.values(c, seed: 37)),
    ], inputs: [Graph.Input(name: "x", shape: [])], outputs: ["y"], opset: 17)
    let input = ["x": NDArray(shape: [2, cin] + spatial, floats: Self.values(2 * cin * pixels, seed: 38))]
    let folded = try Executor(graph: graph, optimize: true), unfolded = try Executor(graph: graph, optimize: false)
    #expect(folded.optimized.nodes.map(\.opType) == ["Conv"], "\(dims)-D")
    let a = try folded.run(input)["y"]!.floatValues(), b = try unfolded.run(input)["y"]!.floatValues()
    #expect(closeness(a, b, rtol: 1e-5, atol: 1e-5).isClose, "\(dims)-D")
  }

  /// Conv -> scalar Mul -> scalar Add -> exported HardSwish (Add 3, Clip,
  /// Mul, Div 6) -> Relu, then a depthwise and a 1x1 conv each with Clip,
  /// and a Sigmoid after a residual Add (no conv to join, so a node of its
  /// own): fused into conv epilogues, one depthwise block (the depthwise
  /// and 1x1 convs), an Add and `_Pointwise` nodes, the same values as running
  /// every op.
  @Test func fusedPointwiseEqualsUnfused() throws {
    func scalar(_ v: Float) -> NDArray { NDArray(shape: [1], floats: [v]) }
    let inits: [String: NDArray] = [
      "w1": NDArray(shape: [6, 3, 3, 3], floats: Self.values(162, seed: 20)), "b1": NDArray(shape: [6], floats: Self.values(6, seed: 21)),
      "wd": NDArray(shape: [6, 1, 3, 3], floats: Self.values(54, seed: 22)),
      "wp": NDArray(shape: [6, 6, 1, 1], floats: Self.values(36, seed: 23)),
      "two": scalar(2.5), "half": scalar(-0.5), "three": scalar(3), "zero": scalar(0), "six": scalar(6),
      "low": scalar(-0.2), "high": scalar(0.7),
    ]
    let nodes = [
      Node(name: "c1", opType: "Conv", inputs: ["x", "w1", "b1"], outputs: ["c1"], attributes: ["pads": .ints([1, 1, 1, 1])]),
      Node(name: "m", opType: "Mul", inputs: ["two", "c1"], outputs: ["m"]),
      Node(name: "a", opType: "Add", inputs: ["m", "half"], outputs: ["a"]),
      Node(name: "h1", opType: "Add", inputs: ["a", "three"], outputs: ["h1"]),
      Node(name: "h2", opType: "Clip", inputs: ["h1", "zero", "six"], outputs: ["h2"]),
      Node(name: "h3", opType: "Mul", inputs: ["a", "h2"], outputs: ["h3"]),
      Node(name: "h4", opType: "Div", inputs: ["h3", "six"], outputs: ["h4"]),
      Node(name: "r", opType: "Relu", inputs: ["h4"], outputs: ["r"]),
      Node(name: "dw", opType: "Conv", inputs: ["r", "wd"], outputs: ["dw"],
           attributes: ["group": .int(6), "pads": .ints([1, 1, 1, 1])]),
      Node(name: "k1", opType: "Clip", inputs: ["dw", "low", "high"], outputs: ["k1"]),
      Node(name: "pw", opType: "Conv", inputs: ["k1", "wp"], outputs: ["pw"]),
      Node(name: "k2", opType: "Clip", inputs: ["pw", "low", "high"], outputs: ["k2"]),
      Node(name: "sum", opType: "Add", inputs: ["k2", "r"], outputs: ["sum"]),
      Node(name: "s", opType: "Sigmoid", inputs: ["sum"], outputs: ["s"]),
    ]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["s"], opset: 17)
    let input = ["x": NDArray(shape: [1, 3, 7, 9], floats: Self.values(189, seed: 24).map { $0 * 4 })]
    let fused = try Executor(graph: graph, optimize: true)
    let plain = try Executor(graph: graph, optimize: false)
    // The Sigmoid after the residual sum runs in the Add's pass.
    #expect(fused.optimized.nodes.map(\.opType) == ["Conv", DepthwiseBlock.opType, "Add"])
    let a = try fused.run(input)["s"]!.floatValues(), b = try plain.run(input)["s"]!.floatValues()
    #expect(closeness(a, b, rtol: 1e-5, atol: 1e-6).isClose)
    // An intermediate value the fusion removed can still be asked for, and
    // the rest of the graph stays fused around it.
    let h3 = try fused.run(input, outputs: ["h3"])["h3"]!.floatValues()
    // The scalar Mul and Add after c1 fold into its weights, which rounds
    // c1's sums differently; h3 (up to about 40) squares that difference.
    let h3Check = closeness(h3, try plain.run(input, outputs: ["h3"])["h3"]!.floatValues(), rtol: 1e-5, atol: 1e-4)
    #expect(h3Check.isClose, "\(h3Check)")
    let both = try fused.profiledRun(input, outputs: ["h3", "s"])
    #expect(both.nodes.count < nodes.count && both.nodes.contains { $0.path.hasPrefix("fused") })
    #expect(closeness(both.values["s"]!.floatValues(), b, rtol: 1e-5, atol: 1e-6).isClose)
  }

  /// Each strategy applies the steps fused after its convolution (a
  /// HardSwish and a LeakyRelu, on sums of both signs) to every output
  /// pixel and channel: forced on convolutions it can take (3x3 at stride
  /// 1 and 2 from planes and from pixels, grouped by 8, depthwise, 1x1 on a
  /// 1x1 map), against the ops run one by one.
  @Test(arguments: Convolution.Strategy.allCases, InstructionSet.available)
  func everyConvStrategyAppliesItsFusedSteps(_ strategy: Convolution.Strategy, isa: InstructionSet) throws {
    try InstructionSet.with(isa) { try checkFusedSteps(strategy) }
  }

  func checkFusedSteps(_ strategy: Convolution.Strategy) throws {
    // (cin, cout, group, kernel, stride, input size)
    let cases = [(3, 20, 1, 3, 2, 15), (16, 20, 1, 3, 1, 11), (16, 16, 2, 3, 1, 9), (16, 16, 16, 3, 2, 19), (24, 20, 1, 1, 1, 1)]
    var taken = 0
    for (index, (cin, cout, group, k, stride, size)) in cases.enumerated() {
      let inits = [
        "w": NDArray(shape: [cout, cin / group, k, k], floats: Self.values(cout * cin / group * k * k, seed: 60 + index)),
        "b": NDArray(shape: [cout], floats: Self.values(cout, seed: 70 + index)),
      ]
      let nodes = [
        Node(name: "c", opType: "Conv", inputs: ["x", "w", "b"], outputs: ["c"],
             attributes: ["group": .int(group), "strides": .ints([stride, stride]), "pads": .ints(Array(repeating: k / 2, count: 4))]),
        Node(name: "h", opType: "HardSwish", inputs: ["c"], outputs: ["h"]),
        Node(name: "l", opType: "LeakyRelu", inputs: ["h"], outputs: ["y"], attributes: ["alpha": .float(0.25)]),
      ]
      let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["y"], opset: 17)
      let input = ["x": NDArray(shape: [1, cin, size, size], floats: Self.values(cin * size * size, seed: 80 + index).map { $0 * 3 })]
      let fused = try Executor(graph: graph, optimize: true)
      #expect(fused.optimized.nodes.count == 1)
      // The ops one by one, direct: the default would run the 3x3 at
      // stride 1 as Winograd, whose transforms' rounding (2.5e-5 here) is
      // not the fused steps' to answer for.
      let want = try Convolution.$forcedStrategy.withValue(.im2col) {
        try Executor(graph: graph, optimize: false).run(input)["y"]!.floatValues()
      }
      for channelsLast in [false, true] {
        let given = channelsLast ? ["x": input["x"]!.toChannelsLast()] : input
        let run = try Convolution.$forcedStrategy.withValue(strategy) { try fused.profiledRun(given) }
        // The path names the strategy, then any detail after a colon (Winograd's tile), then the steps.
        let path = run.nodes[0].path.split(separator: "+")[0].split(separator: ":")[0]
        if path == strategy.rawValue { taken += 1 }
        // Winograd's transforms round differently (sums of 144 terms here);
        // it also runs where the forced strategy cannot.
        let tolerance: Float = path == Convolution.Strategy.winograd.rawValue ? 1e-4 : 1e-5
        #expect(closeness(run.values["y"]!.standard().floatValues(), want, rtol: tolerance, atol: tolerance).isClose,
                "\(strategy) case \(index) channels last \(channelsLast): \(run.nodes[0].path)")
      }
    }
    // Blocked needs AVX2; every other strategy runs on every machine.
    if strategy != .blocked || atr_conv_blocked_preferred() != 0 { #expect(taken > 0, "\(strategy) never taken") }
  }

  /// A scalar Mul and Add after a Conv (PaddleOCR's learnable affine
  /// block) go into the Conv's weights and bias, with or without a bias of
  /// its own; the ReLU after them stays a step; the values are those of
  /// running every op.
  @Test func affineAfterConvFoldsIntoItsWeights() throws {
    func scalar(_ v: Float) -> NDArray { NDArray(shape: [], floats: [v]) }
    for bias in [true, false] {
      var inits: [String: NDArray] = [
        "w": NDArray(shape: [6, 3, 3, 3], floats: Self.values(162, seed: 50)), "a": scalar(-1.7), "b": scalar(0.3),
      ]
      if bias { inits["bias"] = NDArray(shape: [6], floats: Self.values(6, seed: 51)) }
      let nodes = [
        Node(name: "c", opType: "Conv", inputs: bias ? ["x", "w", "bias"] : ["x", "w"], outputs: ["c"]),
        Node(name: "m", opType: "Mul", inputs: ["a", "c"], outputs: ["m"]),
        Node(name: "p", opType: "Add", inputs: ["m", "b"], outputs: ["p"]),
        Node(name: "r", opType: "Relu", inputs: ["p"], outputs: ["y"]),
      ]
      let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["y"], opset: 17)
      let input = ["x": NDArray(shape: [1, 3, 6, 7], floats: Self.values(126, seed: 52))]
      let fused = try Executor(graph: graph, optimize: true)
      #expect(fused.optimized.nodes.count == 1)
      let epilogue = try Pointwise.decode(fused.optimized.nodes[0].attributes[Pointwise.epilogueAttribute].map {
        if case .floats(let v) = $0 { v } else { [] }
      } ?? [])
      #expect(epilogue.map(\.op) == [ATR_PW_RELU])
      let a = try fused.run(input)["y"]!.floatValues()
      let b = try Executor(graph: graph, optimize: false).run(input)["y"]!.floatValues()
      #expect(closeness(a, b, rtol: 1e-5, atol: 1e-5).isClose)
    }
  }

  /// A depthwise convolution (3x3, or 5x5 with stride 2, dilation and
  /// uneven padding, or 5x5 on a 7x7 map) with the 1x1 expansion before it (with a bias and a
  /// ReLU6, or neither), the 1x1 projection after it (with a ReLU, or
  /// without a bias), or both, becomes one `_DepthwiseBlock` node, whose
  /// values are those of running the convolutions, through the ring or
  /// one after the other, on 1 to 3 threads (bands whose windows reach
  /// above them), for two images. A block reading the graph's input, which
  /// comes as planes, is left as convolutions.
  @Test func depthwiseBlocksEqualTheirOps() throws {
    struct Block {
      var cin, channels: Int
      var k, stride, dilation: (Int, Int)
      var pads: [Int]
      var expand: Bool, activation: Bool
      var project: Int?
      var size = (17, 13)
    }
    let blocks = [
      Block(cin: 5, channels: 40, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], expand: true,
            activation: true, project: nil),
      Block(cin: 24, channels: 24, k: (5, 5), stride: (2, 2), dilation: (2, 1), pads: [3, 2, 2, 1], expand: false,
            activation: false, project: 16),
      Block(cin: 7, channels: 48, k: (3, 3), stride: (2, 2), dilation: (1, 1), pads: [1, 1, 1, 1], expand: true,
            activation: false, project: 20),
      // A 7x7 map under a 5x5 kernel (zero-padded rows, blocks of pixels
      // that end with the row) with a rest of 4 channels past 16; rows of
      // 40 pixels, wider than the padded ones.
      Block(cin: 6, channels: 20, k: (5, 5), stride: (1, 1), dilation: (1, 1), pads: [2, 2, 2, 2], expand: true,
            activation: true, project: 12, size: (7, 7)),
      Block(cin: 8, channels: 32, k: (3, 3), stride: (1, 1), dilation: (1, 1), pads: [1, 1, 1, 1], expand: true,
            activation: false, project: nil, size: (9, 40)),
    ]
    for (index, b) in blocks.enumerated() {
      var inits: [String: NDArray] = [
        "we": NDArray(shape: [b.channels, b.cin, 1, 1], floats: Self.values(b.channels * b.cin, seed: 70 + index)),
        "wd": NDArray(shape: [b.channels, 1, b.k.0, b.k.1], floats: Self.values(b.channels * b.k.0 * b.k.1, seed: 73 + index)),
        "bd": NDArray(shape: [b.channels], floats: Self.values(b.channels, seed: 76 + index)),
        "wp": NDArray(shape: [b.project ?? 1, b.channels, 1, 1], floats: Self.values((b.project ?? 1) * b.channels, seed: 79)),
        "bp": NDArray(shape: [b.project ?? 1], floats: Self.values(b.project ?? 1, seed: 80)),
        "be": NDArray(shape: [b.channels], floats: Self.values(b.channels, seed: 81)),
        "zero": NDArray(shape: [], floats: [0]), "six": NDArray(shape: [], floats: [6]),
      ]
      inits["w0"] = NDArray(shape: [b.cin, b.cin, 3, 3], floats: Self.values(b.cin * b.cin * 9, seed: 83))
      var nodes: [Node] = []
      var value = "x"
      func add(_ node: Node) { nodes.append(node); value = node.outputs[0] }
      // A block reads channels-last data a convolution made, not planes.
      add(Node(name: "c0", opType: "Conv", inputs: ["x", "w0"], outputs: ["c0"], attributes: ["pads": .ints([1, 1, 1, 1])]))
      if b.expand {
        add(Node(name: "e", opType: "Conv", inputs: b.activation ? ["c0", "we", "be"] : ["c0", "we"], outputs: ["e"]))
        if b.activation { add(Node(name: "r6", opType: "Clip", inputs: ["e", "zero", "six"], outputs: ["r6"])) }
      }
      add(Node(name: "d", opType: "Conv", inputs: [value, "wd", "bd"], outputs: ["d"],
               attributes: ["group": .int(b.channels), "kernel_shape": .ints([b.k.0, b.k.1]),
                            "strides": .ints([b.stride.0, b.stride.1]), "dilations": .ints([b.dilation.0, b.dilation.1]),
                            "pads": .ints(b.pads)]))
      add(Node(name: "r", opType: "Relu", inputs: ["d"], outputs: ["r"]))
      if b.project != nil {
        add(Node(name: "p", opType: "Conv", inputs: b.activation ? [value, "wp"] : [value, "wp", "bp"], outputs: ["p"]))
        if !b.activation { add(Node(name: "pr", opType: "Relu", inputs: ["p"], outputs: ["pr"])) }
      }
      if !b.expand { inits["we"] = nil; inits["be"] = nil }
      let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: [value],
                        opset: 17)
      let (h, w) = b.size
      let input = ["x": NDArray(shape: [2, b.cin, h, w], floats: Self.values(2 * b.cin * h * w, seed: 82).map { $0 * 3 })]
      let expected = try Executor(graph: graph, optimize: false).run(input)[value]!.floatValues()
      for threads in [1, 2, 3] {
        let fused = try Executor(graph: graph, threads: threads, optimize: true)
        #expect(fused.optimized.nodes.map(\.opType) == ["Conv", DepthwiseBlock.opType], "block \(index)")
        for ring in [true, false, nil] {
          let result = try DepthwiseBlock.$forcedFusion.withValue(ring) { try fused.profiledRun(input) }
          let check = closeness(result.values[value]!.floatValues(), expected, rtol: 1e-5, atol: 1e-5)
          #expect(check.isClose, "block \(index), \(threads) threads, ring \(String(describing: ring)): \(check)")
          if let ring { #expect(result.nodes.first { $0.op == DepthwiseBlock.opType }?.path.hasPrefix("ring:") == ring) }
        }
      }
      // Described as its convolutions are: the same output shape, the
      // same multiply-adds and the same receptive field.
      let whole = try NetworkSummary(graph: graph, inputShapes: ["x": input["x"]!.shape])
      let block = try NetworkSummary(graph: try Executor(graph: graph, optimize: true).optimized,
                                     inputShapes: ["x": input["x"]!.shape])
      #expect(block.layers.last?.outputShape == whole.layers.last?.outputShape && block.totalMACs == whole.totalMACs)
      #expect(block.layers.last.map { "\($0.receptiveField)" } == whole.layers.last.map { "\($0.receptiveField)" })
      // A block reading the graph's input (planes) stays convolutions.
      var direct = graph
      direct.nodes.removeFirst()
      direct.nodes[0].inputs[0] = "x"
      #expect(!(try Executor(graph: direct, optimize: true).optimized.nodes.contains { $0.opType == DepthwiseBlock.opType }))
      // The depthwise output asked for by name stays: no projection.
      let kept = try Executor(graph: graph, optimize: true).run(input, outputs: ["r", value])
      #expect(closeness(kept[value]!.floatValues(), expected, rtol: 1e-5, atol: 1e-5).isClose)
    }
  }

  /// A residual sum followed by Relu: the Relu runs on each chunk of the
  /// Add's sum (no node of its own), with every op's values, in either
  /// layout and when one operand broadcasts (first or second); on integers
  /// the sum keeps its type.
  @Test func stepsAfterAnAddRunInItsPass() throws {
    let channels = 6
    let inits: [String: NDArray] = [
      "w": NDArray(shape: [channels, 3, 3, 3], floats: Self.values(channels * 27, seed: 70)),
      "v": NDArray(shape: [channels, 3, 1, 1], floats: Self.values(channels * 3, seed: 71)),
    ]
    for (broadcastOperand, smallerFirst) in [(false, false), (true, false), (true, true)] {
      let other = broadcastOperand ? "g" : "p"
      let nodes = [
        Node(name: "c", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
        Node(name: "p", opType: "Conv", inputs: ["x", "v"], outputs: ["p"]),
        Node(name: "g", opType: "GlobalAveragePool", inputs: ["p"], outputs: ["g"]),
        Node(name: "a", opType: "Add", inputs: smallerFirst ? [other, "c"] : ["c", other], outputs: ["a"]),
        Node(name: "r", opType: "LeakyRelu", inputs: ["a"], outputs: ["y"], attributes: ["alpha": .float(0.125)]),
      ]
      let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["y"],
                        opset: 17)
      let input = ["x": NDArray(shape: [2, 3, 9, 11], floats: Self.values(2 * 3 * 99, seed: 72))]
      let expected = try Executor(graph: graph, optimize: false).run(input)["y"]!.floatValues()
      let fused = try Executor(graph: graph, optimize: true)
      #expect(!fused.optimized.nodes.contains { $0.opType == Pointwise.opType || $0.opType == "LeakyRelu" })
      for standardLayout in [true, false] {
        let values = try fused.run(input, standardLayout: standardLayout)["y"]!.floatValues()
        #expect(closeness(values, expected, rtol: 1e-6, atol: 1e-6).isClose,
                "broadcast \(broadcastOperand), smaller first \(smallerFirst)")
      }
    }
    let ints = Graph(nodes: [Node(name: "a", opType: "Add", inputs: ["i", "j"], outputs: ["s"]),
                             Node(name: "r", opType: "Relu", inputs: ["s"], outputs: ["y"])],
                     initializers: [:], inputs: [Graph.Input(name: "i", shape: []), Graph.Input(name: "j", shape: [])],
                     outputs: ["y"], opset: 17)
    let sum = try Executor(graph: ints, optimize: true).run(["i": NDArray(shape: [3], int64s: [-5, 2, 7]),
                                                              "j": NDArray(shape: [3], int64s: [1, -4, 1])])["y"]!
    #expect(sum.dtype == .int64 && sum.int64Values() == [0, 0, 8])
  }

  /// A kernel without weights, for the rules that choose how one runs:
  /// `taps` x `taps`, stride 1, padded to keep a `size` x `size` map.
  static func windowKernel(_ cin: Int, _ cout: Int, taps: Int, group: Int = 1, size: Int = 7, stride: Int = 1)
    -> ConvKernel
  {
    let axis = WindowAxis(input: size, kernel: taps, stride: stride, dilation: 1, padBegin: taps / 2, padEnd: taps / 2,
                          output: (size - 1) / stride + 1)
    return ConvKernel(n: 1, cin: cin, cout: cout, group: group, axes: [axis, axis], weights: [], bias: nil)
  }

  /// The ring reads both 1x1 products' weights for every row: it is
  /// chosen when the two sets together fit `rowProductWeightBytes`, not
  /// when each alone does.
  @Test func ringNeedsBothProductsWeightsWithinTheBound() {
    let channels = 64
    let bound = DepthwiseBlock.rowProductWeightBytes / MemoryLayout<Float>.stride / channels  // wide side, at 64 channels
    let depthwise = Self.windowKernel(channels, channels, taps: 3, group: channels)
    // Each set 60% of the bound: one alone fits, both do not.
    let wide = bound * 6 / 10
    let (expand, project) = (Self.windowKernel(wide, channels, taps: 1), Self.windowKernel(channels, wide, taps: 1))
    #expect(DepthwiseBlock.prefersRing(expand: expand, depthwise, project: nil, threads: 1))
    #expect(DepthwiseBlock.prefersRing(expand: nil, depthwise, project: project, threads: 1))
    #expect(!DepthwiseBlock.prefersRing(expand: expand, depthwise, project: project, threads: 1))
    let narrow = bound * 4 / 10
    #expect(DepthwiseBlock.prefersRing(expand: Self.windowKernel(narrow, channels, taps: 1), depthwise,
                                       project: Self.windowKernel(channels, narrow, taps: 1), threads: 1))
  }

  /// The blocked kernel keeps the layers it is the faster way for (few
  /// products per output, or 16 to 63 output channels per group, or 8 to
  /// 63 in one group);
  /// wide layers of many products run as the packed product. Without the
  /// blocked kernel's registers (no AVX2), no layer takes it.
  @Test func blockedKernelOnlyForFewProductsOrNarrowOutputs() {
    let available = atr_conv_blocked_preferred() != 0
    let k = ConvKernel.blockedMaxK
    // (cin, cout, taps, group, blocked): first layers, narrow outputs,
    // both sides of each bound, and the bounds taken per group.
    let cases = [
      (3, 64, 7, 1, true), (16, 32, 3, 1, true), (24, 48, 5, 1, true), (64, 63, 3, 1, true), (64, 64, 3, 1, false),
      ((k - 1) / 9, 64, 3, 1, true), ((k + 8) / 9, 64, 3, 1, false), (256, 512, 3, 1, false), (128, 128, 5, 1, false),
      (256, 128, 3, 2, false), (256, 128, 3, 4, true), (16, 256, 1, 1, false), (4, 8, 3, 1, true), (4, 7, 3, 1, false), (48, 48, 3, 6, false), (48, 96, 3, 6, true),
    ]
    for (cin, cout, taps, group, blocked) in cases {
      let kernel = Self.windowKernel(cin, cout, taps: taps, group: group)
      #expect(kernel.prefersBlocked == (available && blocked), "\(cin) -> \(cout) / \(group) \(taps)x\(taps)")
    }
  }

  /// Narrow output groups take the transposed product, but not a 1x1
  /// convolution, whose input rows are already the product's rows.
  @Test func onlyWindowedProductsRunTransposed() {
    // Output groups of 8 to 40 channels from 96 or 512 inputs, in 1, 2 or
    // 4 groups, on small and large maps.
    for (taps, cin, group, size) in [(1, 96, 1, 28), (3, 96, 1, 28), (1, 512, 2, 7), (3, 512, 4, 56), (1, 128, 4, 112)] {
      for coutG in [8, 16, 24, 40] {
        let kernel = Self.windowKernel(cin, coutG * group, taps: taps, group: group, size: size)
        #expect(kernel.transposedProduct == (taps > 1), "\(taps)x\(taps) \(cin) -> \(coutG) x \(group) at \(size)")
      }
    }
  }

  /// ShuffleNet's shuffle of two groups of 20 and of 8 channels after a
  /// Conv (channels-last): the halves interleaved by permutes (20: a vector
  /// and a rest) or gathered (8), the values of the three ops.
  @Test func channelShuffleOfTwoGroupsEqualsItsOps() throws {
    for per in [20, 8] {
      let channels = 2 * per
      let inits: [String: NDArray] = [
        "w": NDArray(shape: [channels, 3, 1, 1], floats: Self.values(channels * 3, seed: 60)),
        "split": NDArray(shape: [5], int64s: [1, 2, Int64(per), 5, 6]),
        "merged": NDArray(shape: [4], int64s: [1, Int64(channels), 5, 6]),
      ]
      let nodes = [
        Node(name: "c", opType: "Conv", inputs: ["x", "w"], outputs: ["c"]),
        Node(name: "r1", opType: "Reshape", inputs: ["c", "split"], outputs: ["r1"]),
        Node(name: "t", opType: "Transpose", inputs: ["r1"], outputs: ["t"], attributes: ["perm": .ints([0, 2, 1, 3, 4])]),
        Node(name: "y", opType: "Reshape", inputs: ["t", "merged"], outputs: ["y"]),
      ]
      let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["y"], opset: 17)
      let input = ["x": NDArray(shape: [1, 3, 5, 6], floats: Self.values(90, seed: 61))]
      let fused = try Executor(graph: graph, optimize: true)
      #expect(fused.optimized.nodes.map(\.opType) == ["Conv", "_ChannelShuffle"])
      let a = try fused.run(input)["y"]!.floatValues()
      let b = try Executor(graph: graph, optimize: false).run(input)["y"]!.floatValues()
      #expect(a == b, "\(per)")
    }
  }

  /// A shape-only trace skips the ops that can give their output shapes
  /// without computing, unless a later op reads their values: here float
  /// arithmetic (Div, Concat) makes the scales of a Resize from the
  /// image's height, so it must compute, and the trace's shapes are those
  /// of a real run.
  @Test func shapeOnlyTraceComputesWhatShapesNeed() throws {
    let inits: [String: NDArray] = [
      "w": NDArray(shape: [4, 3, 3, 3], floats: Self.values(108, seed: 70)), "axis": NDArray(shape: [], int64s: [2]),
      "eight": NDArray(shape: [1], floats: [8]), "ones": NDArray(shape: [2], floats: [1, 1]),
    ]
    let nodes = [
      Node(name: "c", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
      Node(name: "a", opType: "Add", inputs: ["c", "c"], outputs: ["a"]),
      Node(name: "shape", opType: "Shape", inputs: ["a"], outputs: ["shape"]),
      Node(name: "h", opType: "Gather", inputs: ["shape", "axis"], outputs: ["h"]),
      Node(name: "hf", opType: "Cast", inputs: ["h"], outputs: ["hf"], attributes: ["to": .int(1)]),
      Node(name: "f", opType: "Div", inputs: ["hf", "eight"], outputs: ["f"]),
      Node(name: "scales", opType: "Concat", inputs: ["ones", "f", "f"], outputs: ["scales"], attributes: ["axis": .int(0)]),
      Node(name: "y", opType: "Resize", inputs: ["a", "", "scales"], outputs: ["y"]),
    ]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["y"],
                      opset: 17)
    for h in [8, 16] {
      let input = NDArray(shape: [1, 3, h, 6], floats: Self.values(18 * h, seed: 71))
      let summary = try NetworkSummary(graph: graph, inputShapes: ["x": input.shape])
      let real = try Executor(graph: graph).run(["x": input])["y"]!
      #expect(real.shape == [1, 4, h * h / 8, 6 * h / 8])
      #expect(summary.layers.last?.outputShape == real.shape)
    }
  }

  /// YOLO's Focus block as PyTorch exports it (rows then columns sliced
  /// with step 2, the four parts concatenated on channels): one
  /// `_StridedGather`, the same values as the Slices and Concat, from
  /// planes (a graph input) and from channels-last data (after a Conv);
  /// a Slice read elsewhere keeps the ops.
  @Test func focusBlockIsOneGather() throws {
    func ints(_ v: [Int64]) -> NDArray { NDArray(shape: [v.count], int64s: v) }
    let inits: [String: NDArray] = [
      "w": NDArray(shape: [5, 5, 1, 1], floats: Self.values(25, seed: 40)), "zero": ints([0]), "one": ints([1]),
      "end": ints([Int64.max]), "rows": ints([2]), "columns": ints([3]), "two": ints([2]),
    ]
    func slice(_ name: String, _ input: String, start: String, axis: String) -> Node {
      Node(name: name, opType: "Slice", inputs: [input, start, "end", axis, "two"], outputs: [name])
    }
    func graph(from source: String, extraReader: Bool = false) -> Graph {
      var nodes = [
        Node(name: "c", opType: "Conv", inputs: ["x", "w"], outputs: ["c"]),
        slice("even", source, start: "zero", axis: "rows"), slice("odd", source, start: "one", axis: "rows"),
        slice("tl", "even", start: "zero", axis: "columns"), slice("tr", "even", start: "one", axis: "columns"),
        slice("bl", "odd", start: "zero", axis: "columns"), slice("br", "odd", start: "one", axis: "columns"),
        Node(name: "focus", opType: "Concat", inputs: ["tl", "bl", "tr", "br"], outputs: ["focus"], attributes: ["axis": .int(1)]),
      ]
      if extraReader { nodes.append(Node(name: "r", opType: "Relu", inputs: ["odd"], outputs: ["r"])) }
      return Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])],
                   outputs: extraReader ? ["focus", "r"] : ["focus"], opset: 17)
    }
    for (h, w) in [(6, 8), (4, 10)] {
      let input = ["x": NDArray(shape: [2, 5, h, w], floats: Self.values(10 * h * w, seed: 41))]
      for source in ["x", "c"] {
        let fused = try Executor(graph: graph(from: source), optimize: true)
        #expect(fused.optimized.nodes.map(\.opType).contains("_StridedGather"))
        #expect(!fused.optimized.nodes.contains { $0.opType == "Slice" })
        let a = try fused.run(input)["focus"]!
        let b = try Executor(graph: graph(from: source), optimize: false).run(input)["focus"]!
        #expect(a.shape == [2, 20, h / 2, w / 2] && a.shape == b.shape)
        #expect(a.floatValues() == b.floatValues())
      }
    }
    let shared = try Executor(graph: graph(from: "x", extraReader: true), optimize: true)
    #expect(!shared.optimized.nodes.contains { $0.opType == "_StridedGather" })

    // One Slice per part over both axes, step 3, three parts in any order.
    var stepInits = inits
    stepInits["axes"] = ints([2, 3])
    stepInits["steps"] = ints([3, 3])
    stepInits["ends"] = ints([Int64.max, Int64.max])
    var parts: [Node] = []
    for (k, (row, column)) in [(0, 0), (2, 1), (1, 2)].enumerated() {
      stepInits["start\(k)"] = ints([Int64(row), Int64(column)])
      parts.append(Node(name: "p\(k)", opType: "Slice", inputs: ["x", "start\(k)", "ends", "axes", "steps"], outputs: ["p\(k)"]))
    }
    let threeWay = Graph(nodes: parts + [Node(name: "focus", opType: "Concat", inputs: ["p0", "p1", "p2"], outputs: ["focus"],
                                              attributes: ["axis": .int(1)])],
                         initializers: stepInits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["focus"], opset: 17)
    let input = ["x": NDArray(shape: [1, 5, 9, 12], floats: Self.values(540, seed: 42))]
    let fused = try Executor(graph: threeWay, optimize: true)
    #expect(fused.optimized.nodes.map(\.opType) == ["_StridedGather"])
    let a = try fused.run(input)["focus"]!, b = try Executor(graph: threeWay, optimize: false).run(input)["focus"]!
    #expect(a.shape == [1, 15, 3, 4] && a.floatValues() == b.floatValues())
  }

  /// The exported forms of SiLU (Sigmoid, Mul), exact GELU (Div by
  /// sqrt 2, Erf, Add 1, Mul, Mul 0.5), Mish (Softplus, Tanh, Mul) and
  /// ShuffleNet's channel shuffle
  /// (Reshape, Transpose, Reshape), each after a convolution so the data is
  /// channels-last: recognized as one step or node, the same values as
  /// running every op, and the channel shuffle on planes too.
  @Test func recognizedPatternsEqualTheirOps() throws {
    func scalar(_ v: Float) -> NDArray { NDArray(shape: [1], floats: [v]) }
    let inits: [String: NDArray] = [
      "w": NDArray(shape: [8, 3, 3, 3], floats: Self.values(216, seed: 30)), "root2": scalar(1.4142135), "one": scalar(1),
      "half": scalar(0.5), "split": NDArray(shape: [5], int64s: [1, 2, 4, 7, 9]), "merged": NDArray(shape: [4], int64s: [1, 8, 7, 9]),
    ]
    let nodes = [
      Node(name: "c", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
      Node(name: "sg", opType: "Sigmoid", inputs: ["c"], outputs: ["sg"]),
      Node(name: "silu", opType: "Mul", inputs: ["c", "sg"], outputs: ["silu"]),
    ] + Self.exportedGELU("silu", into: "gelu") + [
      Node(name: "sp", opType: "Softplus", inputs: ["gelu"], outputs: ["sp"]),
      Node(name: "th", opType: "Tanh", inputs: ["sp"], outputs: ["th"]),
      Node(name: "mish", opType: "Mul", inputs: ["th", "gelu"], outputs: ["mish"]),
      Node(name: "r1", opType: "Reshape", inputs: ["mish", "split"], outputs: ["r1"]),
      Node(name: "t", opType: "Transpose", inputs: ["r1"], outputs: ["t"], attributes: ["perm": .ints([0, 2, 1, 3, 4])]),
      Node(name: "shuffled", opType: "Reshape", inputs: ["t", "merged"], outputs: ["shuffled"]),
    ]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["shuffled"], opset: 17)
    let input = ["x": NDArray(shape: [1, 3, 7, 9], floats: Self.values(189, seed: 31).map { $0 * 3 })]
    let fused = try Executor(graph: graph, optimize: true)
    let plain = try Executor(graph: graph, optimize: false)
    #expect(fused.optimized.nodes.map(\.opType) == ["Conv", "_ChannelShuffle"])
    let a = try fused.run(input)["shuffled"]!.floatValues(), b = try plain.run(input)["shuffled"]!.floatValues()
    #expect(closeness(a, b, rtol: 1e-5, atol: 1e-6).isClose)
    // On planes (a graph input), and where the split does not match the
    // input, which then runs as the three ops.
    let planes = try fused.run(["x": input["x"]!], outputs: ["shuffled"])
    #expect(planes["shuffled"]!.shape == [1, 8, 7, 9])
    var direct = graph
    direct.nodes = Array(nodes[11...])
    direct.inputs = [Graph.Input(name: "mish", shape: [])]
    let mish = try plain.run(input, outputs: ["mish"])["mish"]!
    let shuffledPlanes = try Executor(graph: direct).run(["mish": mish])["shuffled"]!.floatValues()
    #expect(closeness(shuffledPlanes, b, rtol: 0, atol: 0).isClose)
    let other = try Executor(graph: direct).run(["mish": mish.reshaped([1, 8, 9, 7])])["shuffled"]!.floatValues()
    let otherPlain = try Executor(graph: direct, optimize: false).run(["mish": mish.reshaped([1, 8, 9, 7])])["shuffled"]!
    #expect(other == otherPlain.floatValues())
  }

  /// Exact GELU of `x` as exporters write it: Div by sqrt 2 ("root2"), Erf,
  /// Add 1 ("one"), Mul by `x`, Mul by 0.5 ("half") into `output`.
  static func exportedGELU(_ x: String, into output: String) -> [Node] {
    [
      Node(name: "d", opType: "Div", inputs: [x, "root2"], outputs: ["d"]),
      Node(name: "e", opType: "Erf", inputs: ["d"], outputs: ["e"]),
      Node(name: "p", opType: "Add", inputs: ["e", "one"], outputs: ["p"]),
      Node(name: "q", opType: "Mul", inputs: [x, "p"], outputs: ["q"]),
      Node(name: output, opType: "Mul", inputs: ["q", "half"], outputs: [output]),
    ]
  }

  /// ConvNeXt's MLP as exported: Linear, exact GELU written out, Linear.
  /// The GELU is recognized before the second product takes in its input's
  /// scale (the closing Mul by 0.5), so no Erf is left: the same values as
  /// every op.
  @Test func geluBeforeAProductIsRecognized() throws {
    func scalar(_ v: Float) -> NDArray { NDArray(shape: [], floats: [v]) }
    let inits: [String: NDArray] = [
      "w1": NDArray(shape: [6, 12], floats: Self.values(72, seed: 50)), "b1": NDArray(shape: [12], floats: Self.values(12, seed: 51)),
      "w2": NDArray(shape: [12, 5], floats: Self.values(60, seed: 52)), "b2": NDArray(shape: [5], floats: Self.values(5, seed: 53)),
      "root2": scalar(1.4142135), "one": scalar(1), "half": scalar(0.5),
    ]
    let nodes = [
      Node(name: "m1", opType: "MatMul", inputs: ["x", "w1"], outputs: ["m1"]),
      Node(name: "a1", opType: "Add", inputs: ["b1", "m1"], outputs: ["a1"]),
    ] + Self.exportedGELU("a1", into: "g") + [
      Node(name: "m2", opType: "MatMul", inputs: ["g", "w2"], outputs: ["m2"]),
      Node(name: "y", opType: "Add", inputs: ["b2", "m2"], outputs: ["y"]),
    ]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["y"], opset: 17)
    let input = ["x": NDArray(shape: [1, 4, 3, 6], floats: Self.values(72, seed: 54).map { $0 * 3 })]
    let fused = try Executor(graph: graph, optimize: true)
    #expect(!fused.optimized.nodes.contains { $0.opType == "Erf" })
    #expect(fused.optimized.nodes.map(\.opType) == ["MatMul", "MatMul"])
    let a = try fused.run(input)["y"]!.floatValues(), b = try Executor(graph: graph, optimize: false).run(input)["y"]!.floatValues()
    #expect(closeness(a, b, rtol: 1e-5, atol: 1e-5).isClose)
  }

  /// A product whose input is scaled by a constant (the scale moves into
  /// its epilogue) after steps that other nodes read too, with and without
  /// a bias after it (which must not be scaled): the same values as every op.
  @Test(arguments: [false, true]) func scaledProductInputEqualsItsOps(bias: Bool) throws {
    let inits: [String: NDArray] = [
      "w1": NDArray(shape: [6, 12], floats: Self.values(72, seed: 60)), "b1": NDArray(shape: [12], floats: Self.values(12, seed: 61)),
      "w2": NDArray(shape: [12, 5], floats: Self.values(60, seed: 62)), "half": NDArray(shape: [], floats: [0.5]),
      "root2": NDArray(shape: [], floats: [1.4142135]), "b2": NDArray(shape: [5], floats: Self.values(5, seed: 64)),
    ]
    var nodes = [
      Node(name: "m1", opType: "MatMul", inputs: ["x", "w1"], outputs: ["m1"]),
      Node(name: "a1", opType: "Add", inputs: ["b1", "m1"], outputs: ["a1"]),
      Node(name: "d", opType: "Div", inputs: ["a1", "root2"], outputs: ["d"]),
      Node(name: "q", opType: "Mul", inputs: ["a1", "d"], outputs: ["q"]),
      Node(name: "g", opType: "Mul", inputs: ["q", "half"], outputs: ["g"]),
      Node(name: "y", opType: "MatMul", inputs: ["g", "w2"], outputs: ["y"]),
    ]
    if bias {
      nodes[5] = Node(name: "m2", opType: "MatMul", inputs: ["g", "w2"], outputs: ["m2"])
      nodes.append(Node(name: "y", opType: "Add", inputs: ["b2", "m2"], outputs: ["y"]))
    }
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["y"], opset: 17)
    let input = ["x": NDArray(shape: [1, 4, 3, 6], floats: Self.values(72, seed: 63).map { $0 * 3 })]
    let a = try Executor(graph: graph, optimize: true).run(input)["y"]!.floatValues()
    let b = try Executor(graph: graph, optimize: false).run(input)["y"]!.floatValues()
    #expect(closeness(a, b, rtol: 1e-5, atol: 1e-5).isClose)
  }

  /// A Linear layer as exporters write it on a (N, H, W, C) input: MatMul
  /// by a weight passed through an Identity, Add of the bias, Gelu: the
  /// bias and Gelu go into the product, the same values as every op.
  /// Products of few rows stream the weights in blocks of output columns
  /// (32 or 64 by instruction set), split at blocks across threads: a
  /// part block (n not a multiple of the block) and every split against a
  /// plain loop, B given either way round, on every instruction set. The
  /// packed product of many rows too, and k = 0 (only the bias): the
  /// output starts uninitialized, so each path must write all of it. The
  /// weights are prepared by as many threads (shares of the stream's
  /// blocks, or of the panels, from 65,536 weights).
  @Test(arguments: InstructionSet.available, [1, 2, 3])
  func productsMatchNaiveLoops(isa: InstructionSet, threads: Int) throws {
    let shapes = [(1, 1, 1), (1, 31, 5), (2, 32, 4), (1, 33, 11), (3, 70, 1000), (1, 577, 130), (4, 64, 7), (2, 300, 256)]
    let cases = shapes.map { ($0, true) } + [(2, 0, 3), (40, 17, 33), (300, 64, 96), (20, 300, 250)].map { ($0, false) }
    for ((m, k, n), byRows) in cases {
      for transposed in [false, true] {
        let b = Self.values(k * n, seed: k + n), a = Self.values(m * k, seed: m), bias = Self.values(n, seed: 9)
        let got = InstructionSet.with(isa) {
          let weights = Linear.prepare(b, k: k, n: n, transposed: transposed, byRows: byRows, threads: threads)
          return Linear.product(Tensor(shape: [m, k], values: a), m: m, k: k, n: n, weights, bias: bias,
                                threads: threads, shape: [m, n]).scalars
        }
        var want = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
          for j in 0..<n {
            var sum = Double(bias[j])
            for p in 0..<k { sum += Double(a[i * k + p]) * Double(transposed ? b[j * k + p] : b[p * n + j]) }
            want[i * n + j] = Float(sum)
          }
        }
        #expect(closeness(got, want, rtol: 1e-5, atol: 1e-5).isClose,
                "\(isa) m \(m) k \(k) n \(n) transposed \(transposed) by rows \(byRows)")
      }
    }
  }

  /// A scale computed from a fixed input's shape (attention's 1/sqrt of the
  /// head size, through Identity, Shape, Cast, Sqrt and Div) folds into a
  /// constant, and the scalar Muls on both sides of the MatMul move into it
  /// as one scale of the product: the optimized graph is the MatMul (after
  /// the Identity), with the values of running every op.
  @Test func constantChainsAndMatMulScalesFold() throws {
    func scalar(_ v: Float) -> NDArray { NDArray(shape: [], floats: [v]) }
    let nodes = [
      Node(name: "i", opType: "Identity", inputs: ["q"], outputs: ["qi"]),
      Node(name: "s", opType: "Shape", inputs: ["qi"], outputs: ["size"], attributes: ["start": .int(-1)]),
      Node(name: "c", opType: "Cast", inputs: ["size"], outputs: ["sizef"], attributes: ["to": .int(1)]),
      Node(name: "r", opType: "Sqrt", inputs: ["sizef"], outputs: ["root"]),
      Node(name: "d", opType: "Div", inputs: ["one", "root"], outputs: ["scale"]),
      Node(name: "mq", opType: "Mul", inputs: ["qi", "scale"], outputs: ["qs"]),
      Node(name: "mk", opType: "Mul", inputs: ["half", "k"], outputs: ["ks"]),
      Node(name: "m", opType: "MatMul", inputs: ["qs", "ks"], outputs: ["y"]),
    ]
    let graph = Graph(nodes: nodes, initializers: ["one": NDArray(shape: [1], floats: [1]), "half": scalar(0.5)],
                      inputs: [Graph.Input(name: "q", shape: [2, 3, 4, 16]), Graph.Input(name: "k", shape: [2, 3, 16, 5])],
                      outputs: ["y"], opset: 17)
    let inputs = ["q": NDArray(shape: [2, 3, 4, 16], floats: Self.values(384, seed: 90)),
                  "k": NDArray(shape: [2, 3, 16, 5], floats: Self.values(480, seed: 91))]
    let fused = try Executor(graph: graph, optimize: true)
    #expect(fused.optimized.nodes.map(\.opType) == ["Identity", "MatMul"])
    let a = try fused.run(inputs)["y"]!, b = try Executor(graph: graph, optimize: false).run(inputs)["y"]!
    #expect(a.shape == [2, 3, 4, 5] && closeness(a.floatValues(), b.floatValues(), rtol: 1e-5, atol: 1e-6).isClose)
    // A Mul read by something else as well stays, and so does its value.
    var shared = graph
    shared.outputs = ["y", "qs"]
    let kept = try Executor(graph: shared, optimize: true)
    #expect(kept.optimized.nodes.map(\.opType) == ["Identity", Pointwise.opType, "MatMul"])
    #expect(closeness(try kept.run(inputs)["y"]!.floatValues(), b.floatValues(), rtol: 1e-5, atol: 1e-6).isClose)
  }

  @Test func matMulWithBiasAndActivationEqualsItsOps() throws {
    let inits: [String: NDArray] = [
      "w": NDArray(shape: [12, 20], floats: Self.values(240, seed: 50)), "b": NDArray(shape: [20], floats: Self.values(20, seed: 51)),
    ]
    let nodes = [
      Node(name: "i", opType: "Identity", inputs: ["w"], outputs: ["wi"]),
      Node(name: "m", opType: "MatMul", inputs: ["x", "wi"], outputs: ["m"]),
      Node(name: "a", opType: "Add", inputs: ["b", "m"], outputs: ["a"]),
      Node(name: "g", opType: "Gelu", inputs: ["a"], outputs: ["g"]),
    ]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["g"], opset: 20)
    for shape in [[1, 3, 5, 12], [1, 12]] {
      let input = ["x": NDArray(shape: shape, floats: Self.values(shape.reduce(1, *), seed: 52).map { $0 * 2 })]
      let fused = try Executor(graph: graph, optimize: true), plain = try Executor(graph: graph, optimize: false)
      #expect(fused.optimized.nodes.map(\.opType) == ["MatMul"])
      let a = try fused.run(input)["g"]!, b = try plain.run(input)["g"]!
      #expect(a.shape == b.shape && closeness(a.floatValues(), b.floatValues(), rtol: 1e-5, atol: 1e-6).isClose)
    }
  }

  /// Split and Slice of channels-last data (a convolution's output) copy
  /// rows in that layout; the parts equal the channels of the whole.
  @Test func splitAndSliceOfChannelsLastData() throws {
    let inits: [String: NDArray] = [
      "w": NDArray(shape: [8, 3, 3, 3], floats: Self.values(216, seed: 40)), "sizes": NDArray(shape: [2], int64s: [3, 5]),
      "starts": NDArray(shape: [2], int64s: [1, 6]), "ends": NDArray(shape: [2], int64s: [7, 1]),
      "axes": NDArray(shape: [2], int64s: [1, 3]), "steps": NDArray(shape: [2], int64s: [2, -2]),
    ]
    let nodes = [
      Node(name: "c", opType: "Conv", inputs: ["x", "w"], outputs: ["c"], attributes: ["pads": .ints([1, 1, 1, 1])]),
      Node(name: "s", opType: "Split", inputs: ["c", "sizes"], outputs: ["a", "b"], attributes: ["axis": .int(1)]),
      Node(name: "t", opType: "Slice", inputs: ["c", "starts", "ends", "axes", "steps"], outputs: ["d"]),
    ]
    let graph = Graph(nodes: nodes, initializers: inits, inputs: [Graph.Input(name: "x", shape: [])], outputs: ["a", "b", "d"],
                      opset: 17)
    let input = ["x": NDArray(shape: [1, 3, 5, 9], floats: Self.values(135, seed: 41))]
    let executor = try Executor(graph: graph)
    let whole = try executor.run(input, outputs: ["c"])["c"]!
    #expect(whole.shape == [1, 8, 5, 9])
    let values = whole.floatValues()
    func channels(_ range: Range<Int>) -> [Float] { Array(values[(range.lowerBound * 45)..<(range.upperBound * 45)]) }
    let parts = try executor.run(input, standardLayout: false)
    #expect(parts["a"]!.channelsLast && parts["b"]!.channelsLast)
    #expect(parts["a"]!.floatValues() == channels(0..<3) && parts["b"]!.floatValues() == channels(3..<8))
    // Channels 1, 3, 5; columns 6, 4, 2.
    var expected: [Float] = []
    for ch in [1, 3, 5] { for y in 0..<5 { for x in [6, 4, 2] { expected.append(values[(ch * 5 + y) * 9 + x]) } } }
    #expect(parts["d"]!.shape == [1, 3, 5, 3] && parts["d"]!.floatValues() == expected)
  }

  @Test func badGraphsAreClearErrors() throws {
    let x = ["x": NDArray(shape: [1, 1, 4, 4], floats: Self.values(16, seed: 14))]
    let w = ["w": NDArray(shape: [1, 1, 3, 3], floats: Self.values(9, seed: 15))]
    let zeroStride = Node(name: "c", opType: "Conv", inputs: ["x", "w"], outputs: ["y"], attributes: ["strides": .ints([0, 1])])
    #expect(throws: NNError.invalidAttribute(node: "c", op: "Conv", attribute: "strides", reason: "[0, 1]: each must be at least 1")) {
      try Self.run(zeroStride, inputs: x, initializers: w)
    }
    let missing = Node(name: "c", opType: "Conv", inputs: ["x", "nowhere"], outputs: ["y"])
    #expect(throws: NNError.missingInput(node: "c", op: "Conv", input: "nowhere")) { try Self.run(missing, inputs: x) }
    let unknown = Node(name: "t", opType: "LSTM", inputs: ["x"], outputs: ["y"])
    #expect(throws: NNError.unsupportedOp(node: "t", op: "LSTM")) { try Self.run(unknown, inputs: x) }
    let wrongWeights = ["w": NDArray(shape: [1, 2, 3, 3], floats: Self.values(18, seed: 16))]
    #expect(throws: NNError.self) { try Self.run(Node(name: "c", opType: "Conv", inputs: ["x", "w"], outputs: ["y"]), inputs: x,
                                                  initializers: wrongWeights) }
    let tooBig = Node(name: "p", opType: "MaxPool", inputs: ["x"], outputs: ["y"], attributes: ["kernel_shape": .ints([5, 5])])
    #expect(throws: NNError.self) { try Self.run(tooBig, inputs: x) }
    // Attribute values that once trapped or asked for terabytes (found by
    // mutating ONNX's node tests).
    let hugeStride = Node(name: "t", opType: "ConvTranspose", inputs: ["x", "w"], outputs: ["y"],
                          attributes: ["strides": .ints([3, 1 << 31]), "output_shape": .ints([1 << 31, 8])])
    #expect(throws: NNError.self) { try Self.run(hugeStride, inputs: x, initializers: w) }
    let negativePad = Node(name: "t", opType: "ConvTranspose", inputs: ["x", "w"], outputs: ["y"],
                           attributes: ["pads": .ints([1, 2, 1, -(1 << 62)])])
    #expect(throws: NNError.self) { try Self.run(negativePad, inputs: x, initializers: w) }
    let manyParts = Node(name: "s", opType: "Split", inputs: ["x"], outputs: ["p", "q"],
                         attributes: ["axis": .int(3), "num_outputs": .int(1 << 31)])
    #expect(throws: NNError.self) { try Self.run(manyParts, inputs: x, opset: 18) }
    let add = Node(name: "a", opType: "Add", inputs: ["x", "z"], outputs: ["y"])
    #expect(throws: NNError.self) {
      try Self.run(add, inputs: x.merging(["z": NDArray(shape: [3], floats: [1, 2, 3])]) { a, _ in a })
    }
  }

  /// ONNX's structural rules: node names and value names are unique, and
  /// every value is made before it is read (so there is no cycle).
  @Test func graphsBreakingStructuralRulesAreRefused() throws {
    let input = [Graph.Input(name: "x", shape: [1, 1, 4, 4])]
    func graph(_ nodes: [Node]) -> Graph {
      Graph(nodes: nodes, initializers: [:], inputs: input, outputs: [nodes.last!.outputs[0]], opset: 17)
    }
    let sameName = graph([Node(name: "n", opType: "Relu", inputs: ["x"], outputs: ["a"]),
                          Node(name: "n", opType: "Neg", inputs: ["a"], outputs: ["b"])])
    #expect(throws: NNError.duplicateNode(node: "n", op: "Neg")) { try Executor(graph: sameName) }
    let sameValue = graph([Node(name: "r", opType: "Relu", inputs: ["x"], outputs: ["a"]),
                           Node(name: "s", opType: "Neg", inputs: ["x"], outputs: ["a"])])
    #expect(throws: NNError.duplicateValue(node: "s", op: "Neg", value: "a")) { try Executor(graph: sameValue) }
    let overwritesInput = graph([Node(name: "r", opType: "Relu", inputs: ["x"], outputs: ["x"])])
    #expect(throws: NNError.duplicateValue(node: "r", op: "Relu", value: "x")) { try Executor(graph: overwritesInput) }
    let cycle = graph([Node(name: "r", opType: "Add", inputs: ["x", "b"], outputs: ["a"]),
                       Node(name: "s", opType: "Neg", inputs: ["a"], outputs: ["b"])])
    #expect(throws: NNError.missingInput(node: "r", op: "Add", input: "b")) { try Executor(graph: cycle) }
  }
}
