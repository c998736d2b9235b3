import AtrousCore
import _CKernels

/// The internal op `_ConcatConvolution` (made by
/// `GraphOptimizer.fuseConcatConvolution`, never found in a model file): a
/// 1x1 Conv of one group, stride 1 and no padding, with constant weights,
/// whose input is a concatenation along the channels that nothing else
/// reads (SqueezeNet's fire modules, YOLOX's cross-stage blocks). The
/// product reads the parts where they are: W [a; b] = W_a a + W_b b, each
/// part's columns of the weights packed on their own, the products summed
/// into each block of output rows while it is in cache, and the fused
/// steps after the last, so the concatenation is never written and read
/// back. SqueezeNet 1.1's eight concatenations copied 0.49 ms of its 13 (1
/// thread, AMD EPYC).
///
/// Inputs: the Conv's weights (Cout, Cin, 1, 1) and bias (Cout) or "",
/// then the parts, (N, C_i, H, W) each, the C_i adding up to Cin.
/// Attributes: the Conv's (its fused steps among them).
enum ConcatConvolution {
  /// The leading underscore keeps it apart from ONNX's op types.
  static let opType = "_ConcatConvolution"
  /// Inputs before the first part: the weights and the bias.
  static let parameters = 2

  static func register(_ table: inout OperatorTable) {
    table[opType] = { c in [try run(&c)] }
    table.describe([opType], floatData: true, tracesShapes: true, spatiallyLocal: true)
  }

  /// `conv` reading `concat`'s output, as one node with `conv`'s name,
  /// outputs and attributes.
  static func fusing(_ concat: Node, into conv: Node) -> Node {
    Node(name: conv.name, opType: opType, inputs: [conv.inputs[1], conv.inputs.count > 2 ? conv.inputs[2] : ""] + concat.inputs,
         outputs: conv.outputs, attributes: conv.attributes)
  }

  /// Each part's rows of the packed weights `panels` (`atr_pack_b`'s
  /// layout for k = Cin rows): per panel of columns, the part's rows,
  /// which lie together.
  static func split(_ panels: [Float], widths: [Int]) -> [[Float]] {
    let k = widths.reduce(0, +), nr = atr_packed_b_size(1, 1)  // columns of a panel
    let count = k == 0 ? 0 : panels.count / (k * nr)
    var first = 0
    return widths.map { width in
      defer { first += width }
      var part: [Float] = []
      part.reserveCapacity(count * width * nr)
      for q in 0..<count { part += panels[(q * k + first) * nr..<(q * k + first + width) * nr] }
      return part
    }
  }

  static func run(_ c: inout OpContext) throws -> NDArray {
    let parts = try (parameters..<c.inputs.count).map { try c.input($0) }
    guard let first = parts.first else { throw c.mismatch("no parts to concatenate") }
    for part in parts {
      guard part.rank == 4, part.shape[0] == first.shape[0], part.shape[2...] == first.shape[2...] else {
        throw c.mismatch("cannot concatenate \(part.shape) with \(first.shape) along the channels")
      }
    }
    let widths = parts.map { $0.shape[1] }, cin = widths.reduce(0, +)
    let weights = try c.input(0)
    guard weights.rank == 4, weights.shape[1] == cin, weights.shape[2] == 1, weights.shape[3] == 1 else {
      throw c.mismatch("weights \(weights.shape) for \(cin) input channels of a 1x1 convolution")
    }
    let cout = weights.shape[0]
    let bias = c.optionalInput(1)?.floatValues()
    if let bias, bias.count != cout { throw c.mismatch("bias of \(bias.count) for \(cout) channels") }
    let steps = try Pointwise.epilogue(of: c)
    c.path = "concat-parts,im2col" + Pointwise.describe(steps)
    let shape = [first.shape[0], first.shape[2], first.shape[3], cout]  // (N, H, W, Cout)
    if c.shapesOnly { return NDArray(channelsLast: Tensor.uninitialized(shape: shape)) }
    // Each part's rows of the packed weights, made once per graph.
    func pack() -> [[Float]] {
      let w = weights.standard().floatValues()  // (Cout, Cin)
      var matrix = [Float](repeating: 0, count: cin * cout)  // (Cin, Cout)
      for o in 0..<cout { for i in 0..<cin { matrix[i * cout + o] = w[o * cin + i] } }
      var panels = [Float](repeating: 0, count: atr_packed_b_size(cin, cout))
      panels.withUnsafeMutableBufferPointer { atr_pack_b($0.baseAddress!, matrix, cin, cout, cout) }
      return split(panels, widths: widths)
    }
    let packed: [[Float]] = c.cache.map { $0.value(c.index, "concat-conv-panels", make: pack) } ?? pack()
    let stores = parts.map { ($0.isFloat ? $0 : $0.cast(to: .float32)).toChannelsLast().storage! }  // (N, H, W, C_i)
    var output = Tensor.uninitialized(shape: shape)
    let pixels = shape[0] * shape[1] * shape[2]
    let threads = pixels * cin * cout < Convolution.parallelMACs ? 1 : c.threads
    let rows = ConvKernel.epilogueRows(k: cin, n: cout)
    ShapeOps.withPointers(stores[...], []) { sources in
      withPanels(packed[...], []) { panels in
        (bias ?? []).withUnsafeBufferPointer { biasValues in
          output.withUnsafeMutableBufferPointer { out in
            Parallel.bands(pixels, parts: threads, grain: rows) { _, range in
              for start in stride(from: range.lowerBound, to: range.upperBound, by: rows) {
                let count = min(rows, range.upperBound - start)
                let target = out.baseAddress! + start * cout  // (count, Cout)
                for (q, width) in widths.enumerated() {
                  let a = sources[q]! + start * width
                  if q == 0 {
                    atr_sgemm_packed_sum(count, cout, width, a, width, panels[q]!, target, cout,
                                         bias == nil ? nil : biasValues.baseAddress, nil, cout, 1)
                  } else {
                    atr_sgemm_packed(count, cout, width, a, width, panels[q]!, target, cout, ATR_START_C, nil)
                  }
                }
                atr_pointwise(target, count, cout, cout, steps, steps.count)
              }
            }
          }
        }
      }
    }
    return NDArray(channelsLast: output)
  }

  /// `body` with each part's packed weights' first element's address.
  private static func withPanels<R>(_ panels: ArraySlice<[Float]>, _ held: [UnsafePointer<Float>?],
                                    _ body: ([UnsafePointer<Float>?]) -> R) -> R {
    guard let first = panels.first else { return body(held) }
    return first.withUnsafeBufferPointer { withPanels(panels.dropFirst(), held + [$0.baseAddress], body) }
  }
}
