import AtrousCore
import _CKernels

/// A Conv that alone reads another Conv's output, run with it (made by
/// `GraphOptimizer.fuseConvolutionChains`): the second Conv's node reads
/// the first's input, carries the first's attributes under
/// `attributePrefix` and its weights and bias at `weightsInput` and
/// `biasInput`. A network's first layers at full resolution (VGG's and
/// U-Net's 3 -> 64 -> 64) make a map (12.8 MB at 224x224) only for the
/// next layer to read once, and at that size it goes out to memory and
/// comes back: in bands of rows, each band of the first's output is made
/// into a buffer that stays in the last-level cache until the second has
/// read it (VGG16's conv1_1 and conv1_2 at 224x224: 21.1 -> 19.2 ms at 1
/// thread, 11.9 -> 10.0 ms at 2, AMD EPYC with a 16 MiB L3, AVX2; later,
/// with each thread making whole bands, 12.3 -> 9.2 ms at 2). Bands
/// run where the first takes the blocked kernel and the second Winograd,
/// over a map at least two bands tall; otherwise the two run one after
/// the other, as two nodes would.
enum ChainedConvolution {
  /// Prefix of the first Conv's attributes on the node.
  static let attributePrefix = "_first_"
  /// Input positions of the first Conv's weights and bias (after the
  /// second's bias and residual slots; the bias "" when there is none).
  static let (weightsInput, biasInput) = (4, 5)

  /// The Conv `second` reading the output of the Conv `first`, as one node.
  static func fusing(_ first: Node, into second: Node) -> Node {
    var fused = second
    var inputs = Array((second.inputs + [String](repeating: "", count: weightsInput)).prefix(weightsInput))
    inputs[0] = first.inputs[0]
    fused.inputs = inputs + [first.inputs[1], first.inputs.count > 2 ? first.inputs[2] : ""]
    fused.carry(first.attributes, under: attributePrefix)
    fused.attributes[nameAttribute] = .string(first.name)
    return fused
  }

  /// The first Conv's name (errors name the node they come from).
  static let nameAttribute = attributePrefix + "\u{0}name"


  /// The two Convs fused into `node`, as nodes of their own joined by a
  /// value no other node names, or nil when `node` is a plain Conv.
  static func parts(of node: Node) -> (first: Node, second: Node)? {
    guard node.inputs.count > weightsInput, !node.inputs[weightsInput].isEmpty, let output = node.outputs.first else {
      return nil
    }
    let between = output + "\u{0}first"
    var name = node.name
    if case .string(let given)? = node.attributes[nameAttribute] { name = given }
    let first = Node(name: name, opType: "Conv", inputs: [node.inputs[0], node.inputs[weightsInput], node.inputs[biasInput]],
                     outputs: [between], attributes: node.carried(under: attributePrefix).filter { $0.key != "\u{0}name" })
    var second = node
    var inputs = [between] + node.inputs[1..<weightsInput]
    while inputs.last == "" { inputs.removeLast() }
    second.inputs = inputs
    second.attributes = node.attributes.filter { !$0.key.hasPrefix(attributePrefix) }
    return (first, second)
  }

  /// The two Convs fused into `c`'s node, once per executor
  /// (`OpContext.derived`), or nil.
  static func fused(_ c: OpContext) -> Parts? {
    c.derived { node in parts(of: node).map { Parts(first: $0.first, second: $0.second) } }
  }

  /// The two Convs of a fused node, as `fused` keeps them (a class, as
  /// `ResidualConvolution.Fused` is).
  final class Parts {
    let first: Node, second: Node
    init(first: Node, second: Node) { (self.first, self.second) = (first, second) }
  }

  /// Bytes of the first convolution's output one band holds: an eighth of
  /// the last-level cache, which holds it from being made to being read
  /// beside the second's weights and output (a quarter and a sixteenth
  /// were slower at 2 threads on the machine above, when the threads
  /// shared each band). Each thread has a band of its own.
  static var bandBytes: Int { forcedBandBytes ?? CPUCaches.l3 / 8 }

  /// A band size tests force (on the calling task), so that small maps
  /// take many bands.
  @TaskLocal static var forcedBandBytes: Int? = nil

  /// Runs the node: in bands where they pay (see the type), else the
  /// first Conv and then the second.
  static func run(_ c: inout OpContext, first: Node, second: Node) throws -> [NDArray] {
    let x = try c.input(0)
    func constant(_ index: Int) -> Bool { index < c.constant.count && c.constant[index] }
    // The first keys what it prepares under an index no node has, so the
    // two never share a kept plan or packed weights.
    var a = c.nested(first, inputs: [x, c.optionalInput(weightsInput), c.optionalInput(biasInput)])
    (a.index, a.cache, a.constant) = (-1 - c.index, c.cache, [false, constant(weightsInput), constant(biasInput)])
    let positions = 1..<second.inputs.count
    var b = c.nested(second, inputs: [nil] + positions.map { c.optionalInput($0) })
    (b.cache, b.constant, b.standardOutput) = (c.cache, [false] + positions.map(constant), c.standardOutput)
    if !c.shapesOnly, let (output, path) = try banded(a, b, x) {
      c.path = path
      return [output]
    }
    b.inputs[0] = try Convolution.conv(&a)[0]
    b.consumable = [true] + positions.map { _ in false }
    let output = try Convolution.conv(&b)
    c.path = (a.path ?? "") + "," + (b.path ?? "")
    return output
  }

  /// Output rows per band and bands per image, for maps of `height`
  /// output rows: bands of whole tiles of `tile` rows, at most `most`
  /// rows, the most rows among those whose bands leave the busiest of
  /// `threads` threads (each taking the next band, over `images` maps)
  /// the fewest rows to make. (VGG16's conv1_1 and conv1_2 at 224 on 32
  /// MiB of L3 took bands of 72 rows, 4 of them, the last 8 rows: one
  /// thread made 144 rows, the other 80, and 2 threads ran 1.63 times
  /// 1 thread's speed; 4 bands of 56, 1.92.)
  static func bandRows(height: Int, most: Int, tile: Int, images: Int, threads: Int) -> (rows: Int, perImage: Int) {
    func busiest(_ rows: Int) -> Int { (images * ((height + rows - 1) / rows) + threads - 1) / threads * rows }
    var rows = max(tile, most / tile * tile)
    for r in stride(from: rows, through: tile, by: -tile) where busiest(r) < busiest(rows) { rows = r }
    return (rows, (height + rows - 1) / rows)
  }

  /// The second convolution's output made band by band, and the node's
  /// path; nil where bands do not apply.
  static func banded(_ a: OpContext, _ b: OpContext, _ x: NDArray) throws -> (NDArray, String)? {
    guard x.rank == 4, x.isFloat, PooledConvolution.fused(b) == nil, try ResidualConvolution.fused(b) == nil else {
      return nil
    }
    let planA = try Convolution.planned(a, shape: x.shape, channelsLast: x.channelsLast)
    guard planA.strategy == .blocked else { return nil }
    let first = planA.kernel
    let (n, height, width, middle) = (first.n, first.axes[0].output, first.axes[1].output, first.cout)
    let rowBytes = width * middle * MemoryLayout<Float>.stride
    guard height * rowBytes >= 2 * bandBytes else { return nil }
    let planB = try Convolution.planned(b, shape: [n, middle, height, width], channelsLast: true)
    guard planB.strategy == .winograd, planB.kernel.winogradStride == 1 else { return nil }
    let second = planB.kernel, axis = second.axes[0]
    let (oh, ow) = (axis.output, second.axes[1].output)
    // Output rows per band: whole tiles, so that each band's tiles are the
    // whole map's and every value is the one the two nodes would make.
    let tile = planB.winogradTile, reach = axis.extent - axis.stride
    let threads = min(planA.threads, planB.threads)
    let (rows, perImage) = bandRows(height: oh, most: max(tile, (bandBytes / rowBytes - reach) / axis.stride / tile * tile),
                                    tile: tile, images: n, threads: threads)
    let capacity = min(height, (rows - 1) * axis.stride + axis.extent)  // first's rows a band reads at most
    // Each thread makes whole bands, one after another, in a buffer of its
    // own: splitting each band's rows across the threads took two waits
    // per band, for the slower thread's share of a few rows, and left 2
    // threads at 1.48 times 1 thread's speed on VGG16's conv1_1 and conv1_2.
    let workers = min(threads, n * perImage)
    var geometry = first.geometry
    let scratchBytes = atr_conv_blocked_scratch(&geometry, first.cin / first.group, capacity, x.channelsLast ? 1 : 0)
    let scratch = ConvKernel.scratch(workers, bytes: scratchBytes)
    let bands = ConvKernel.scratch(workers, bytes: capacity * rowBytes)  // each (capacity, W, C) of the first's output
    var output = Tensor.uninitialized(shape: [n, oh, ow, second.cout])  // (N, OH, OW, Cout)
    x.storage!.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        let transformed = planB.transformed!
        withExtendedLifetime(transformed) {
          let weights = transformed.pointer.assumingMemoryBound(to: Float.self)
          Parallel.dynamic(n * perImage, workers: workers) { worker, index in
            let (image, r0) = (index / perImage, index % perImage * rows)
            let r1 = min(oh, r0 + rows)
            let buffer = bands[worker].pointer.assumingMemoryBound(to: Float.self)
            // The first's rows the band's windows read.
            let reads = axis.reads(r0..<r1), rowAxis = axis.piece(r0..<r1)
            first.computeBlockedRows(src.baseAddress!, channelsLastInput: x.channelsLast, image: image,
                                     packed: planA.packed, reads.lowerBound..<(reads.lowerBound + rowAxis.input),
                                     into: buffer, channelStride: 1, pixelStride: middle,
                                     scratch: scratch[worker].pointer)
            // The second over the band alone: its rows outside the map
            // are the padding's zeros, as in the whole map.
            let piece = ConvKernel(n: 1, cin: middle, cout: second.cout, group: 1, axes: [rowAxis, second.axes[1]],
                                   weights: [], bias: second.bias, epilogue: second.epilogue)
            piece.winograd(buffer, into: dst.baseAddress! + (image * oh + r0) * ow * second.cout,
                           weights: weights, tile: tile, residual: nil, threads: 1)
          }
        }
      }
    }
    return (NDArray(channelsLast: output), "bands:" + planA.path + "," + planB.path)
  }
}
