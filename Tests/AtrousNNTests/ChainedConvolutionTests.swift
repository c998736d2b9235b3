import AtrousCore
@testable import AtrousNN
import AtrousTestSupport
import Testing
import _CKernels

/// A Conv fused into the 3x3 Conv that alone reads its output
/// (`ChainedConvolution`), in bands or one after the other, against the
/// graph run unoptimized.
@Suite struct ChainedConvolutionTests {
  /// One case: the first convolution (its input made channels-last by a
  /// 1x1 convolution before it when `pixelsIn`) with a ReLU, then the 3x3
  /// with its pads (top, left, bottom, right) and a ReLU.
  struct Case: Sendable, CustomStringConvertible {
    var cin: Int, middle: Int, cout: Int, kernel: Int, stride: Int, pad: Int
    var pads: [Int]
    var n = 1, size: Int, pixelsIn = false
    var description: String {
      "\(cin)->\(middle) k\(kernel) s\(stride) -> \(cout) pads \(pads) n\(n) \(size)px pixels \(pixelsIn)"
    }
  }

  static let cases: [Case] = [
    // A first layer of 3 channels of planes (VGG's and U-Net's), two
    // images, their bands shared out between two threads.
    Case(cin: 3, middle: 16, cout: 16, kernel: 3, stride: 1, pad: 1, pads: [1, 1, 1, 1], n: 2, size: 67),
    // A strided 5x5 first, an unpadded 3x3 after (rows lost at both ends),
    // output channels not a whole block.
    Case(cin: 3, middle: 32, cout: 24, kernel: 5, stride: 2, pad: 2, pads: [0, 0, 0, 0], size: 45),
    // The same with a 7x7 first: where the transforms take its
    // space-to-depth's 12 channels (8 at once), Winograd runs it, and the
    // two run one after the other.
    Case(cin: 3, middle: 32, cout: 24, kernel: 7, stride: 2, pad: 3, pads: [0, 0, 0, 0], size: 45),
    // Channels-last input, 5x5 first, padding on one side of each axis.
    Case(cin: 8, middle: 16, cout: 32, kernel: 5, stride: 1, pad: 2, pads: [2, 1, 0, 1], size: 37, pixelsIn: true),
  ]

  static func graph(_ c: Case) -> (Graph, [String: NDArray]) {
    let values = OpReferenceTests.values
    return FusionGraph.make(cin: c.cin, n: c.n, size: c.size, pixelsIn: c.pixelsIn, seeds: (45, 46)) { input in
      ([Node(name: "first", opType: "Conv", inputs: [input, "w1", "b1"], outputs: ["c1"],
             attributes: ["strides": .ints([c.stride, c.stride]), "pads": .ints([c.pad, c.pad, c.pad, c.pad])]),
        Node(name: "relu1", opType: "Relu", inputs: ["c1"], outputs: ["r1"]),
        Node(name: "second", opType: "Conv", inputs: ["r1", "w2", "b2"], outputs: ["c2"], attributes: ["pads": .ints(c.pads)]),
        Node(name: "relu2", opType: "Relu", inputs: ["c2"], outputs: ["y"])],
       ["w1": NDArray(shape: [c.middle, c.cin, c.kernel, c.kernel], floats: values(c.middle * c.cin * c.kernel * c.kernel, 41)),
        "b1": NDArray(shape: [c.middle], floats: values(c.middle, 42)),
        "w2": NDArray(shape: [c.cout, c.middle, 3, 3], floats: values(c.cout * c.middle * 9, 43)),
        "b2": NDArray(shape: [c.cout], floats: values(c.cout, 44))])
    }
  }

  /// Every case on every instruction set, 1 to 3 threads, with the bands
  /// the machine's cache gives (none, on maps this small: one after the
  /// other), bands of one tile row and bands of a few, each equal to the
  /// unoptimized graph on the same kernels to the bit: each band's tiles
  /// are the whole map's.
  @Test(arguments: InstructionSet.available)
  func chainEqualsTheTwoConvolutions(isa: InstructionSet) throws {
    // Each Winograd tile the cost rule may pick on some machine: bands
    // follow its tile rows.
    for tile in [nil, 2, 6] {
      try WinogradTile.$forced.withValue(tile) { try checkChains(isa: isa) }
    }
  }

  func checkChains(isa: InstructionSet) throws {
    try InstructionSet.with(isa) {
      for c in Self.cases {
        let (graph, input) = Self.graph(c)
        let plain = try Executor(graph: graph, threads: 1, optimize: false).profiledRun(input)
        let expected = plain.values["y"]!
        // Bands where the first runs blocked (AVX2 and wider) and the
        // second by Winograd; otherwise the two one after the other.
        let paths = plain.nodes.filter { $0.op == "Conv" }.suffix(2).map(\.path)
        let bandable = paths.first!.hasPrefix("blocked") && paths.last!.hasPrefix("winograd")
        let stem = c.kernel == 7 && 4 * c.cin >= atr_winograd_lanes()
        #expect(bandable != stem || atr_conv_blocked_preferred() == 0, "\(c): \(paths)")
        if stem { #expect(paths.first!.hasPrefix("space-to-depth,winograd"), "\(c): \(paths)") }
        let rowBytes = ((c.size + 2 * c.pad - c.kernel) / c.stride + 1) * c.middle * MemoryLayout<Float>.stride
        // Three threads: more workers than the pool's cores, bands that
        // do not share out evenly.
        for threads in [1, 2, 3] {
          let fused = try Executor(graph: graph, threads: threads)
          #expect(fused.optimized.nodes.filter { $0.opType == "Conv" }.count == (c.pixelsIn ? 2 : 1), "\(c)")
          for bytes in [nil, 1, 8 * rowBytes] {
            let run = try ChainedConvolution.$forcedBandBytes.withValue(bytes) { try fused.profiledRun(input) }
            let path = run.nodes.last?.path ?? ""
            #expect(path.hasPrefix("bands:") == (bandable && bytes != nil), "\(c) bytes \(bytes ?? 0): \(path)")
            FusionGraph.expectBitEqual(run.values, expected,
                                       "\(c) threads \(threads) bytes \(bytes ?? 0) tile \(WinogradTile.forced ?? 0) \(path)")
          }
        }
      }
    }
  }

  /// Bands share out evenly: whole tiles, at most the rows a band holds,
  /// covering the map, and no other band height leaves the busiest thread
  /// fewer rows (against every height tried); VGG16's conv1_2 at 224 with
  /// bands of at most 72 rows takes 4 of 56 (not 72, 72, 72, 8).
  @Test func bandsShareOutEvenly() {
    #expect(ChainedConvolution.bandRows(height: 224, most: 72, tile: 4, images: 1, threads: 2) == (56, 4))
    for height in [1, 5, 23, 56, 112, 224, 301] {
      for tile in [2, 4, 6] {
        for most in stride(from: tile, through: 96, by: tile) {
          for images in [1, 2, 3] {
            for threads in [1, 2, 3, 4] {
              let (rows, perImage) = ChainedConvolution.bandRows(height: height, most: most, tile: tile, images: images,
                                                                 threads: threads)
              let label = "height \(height) most \(most) tile \(tile) images \(images) threads \(threads): \(rows) x \(perImage)"
              #expect(rows % tile == 0 && rows <= most && rows * perImage >= height && rows * (perImage - 1) < height,
                      "\(label)")
              func busiest(_ r: Int) -> Int { (images * ((height + r - 1) / r) + threads - 1) / threads * r }
              let best = stride(from: tile, through: most, by: tile).map(busiest).min()!
              #expect(busiest(rows) == best, "\(label)")
            }
          }
        }
      }
    }
  }

  /// Only a first convolution whose output nothing else reads, nor is
  /// asked for, joins the next; and only a 3x3 at stride 1 without
  /// dilation, one group, takes it.
  @Test func onlyASoleReaderOfA3x3IsFused() throws {
    let (graph, input) = Self.graph(Self.cases[0])
    func chained(_ g: Graph, keep: Set<String> = []) -> Bool {
      GraphOptimizer.optimize(g, keep: keep).nodes.contains { ChainedConvolution.parts(of: $0) != nil }
    }
    #expect(chained(graph))
    // Each part keeps its own name and attributes, for errors and profiles.
    let node = GraphOptimizer.optimize(graph, keep: []).nodes.first { ChainedConvolution.parts(of: $0) != nil }!
    let (first, second) = ChainedConvolution.parts(of: node)!
    #expect(first.name == "first" && second.name == "second")
    guard case .ints(let pads)? = first.attributes["pads"], case .ints(let secondPads)? = second.attributes["pads"] else {
      Issue.record("pads lost: \(first.attributes) \(second.attributes)")
      return
    }
    #expect(pads == [1, 1, 1, 1] && secondPads == Self.cases[0].pads)
    #expect(first.attributes["strides"] != nil && second.attributes["strides"] == nil)
    #expect(!chained(graph, keep: ["r1"]))
    var shared = graph
    shared.nodes.append(Node(name: "other", opType: "Sigmoid", inputs: ["r1"], outputs: ["s"]))
    shared.outputs.append("s")
    #expect(!chained(shared))
    for (name, value) in [("strides", Attribute.ints([2, 2])), ("dilations", .ints([2, 2])), ("group", .int(2))] {
      var other = graph
      other.nodes[2].attributes[name] = value
      if name == "group" { other.initializers["w2"] = NDArray(shape: [16, 8, 3, 3], floats: OpReferenceTests.values(16 * 8 * 9, seed: 47)) }
      #expect(!chained(other), "\(name)")
    }
    var pointwise = graph
    pointwise.initializers["w2"] = NDArray(shape: [16, 16, 1, 1], floats: OpReferenceTests.values(256, seed: 48))
    pointwise.nodes[2].attributes = [:]
    #expect(!chained(pointwise))
    // Asking for the first's output runs a variant that keeps it.
    let executor = try Executor(graph: graph, threads: 1)
    let both = try executor.run(input, outputs: ["r1", "y"])
    let plain = try Executor(graph: graph, threads: 1, optimize: false).run(input, outputs: ["r1", "y"])
    #expect(closeness(both["r1"]!.floatValues(), plain["r1"]!.floatValues(), rtol: 0, atol: 0).isClose)
    #expect(closeness(both["y"]!.floatValues(), plain["y"]!.floatValues(), rtol: 0, atol: 0).isClose)
  }
}
