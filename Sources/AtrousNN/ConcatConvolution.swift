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
/// Inputs: "" where the Conv's input was (the concatenation, never
/// made), the Conv's weights (Cout, Cin, 1, 1) and bias or "", then the
/// parts, (N, C_i, H, W) each, the C_i adding up to Cin. Attributes: the
/// Conv's (its fused steps among them), so `Convolution.kernel` reads the
/// node as it reads a Conv.
enum ConcatConvolution {
  /// The leading underscore keeps it apart from ONNX's op types.
  static let opType = "_ConcatConvolution"
  /// Inputs before the first part: the Conv's three.
  static let parameters = 3

  static func register(_ table: inout OperatorTable) {
    table[opType] = { c in [try run(&c)] }
    table.describe([opType], floatData: true, tracesShapes: true, spatiallyLocal: true)
  }

  /// `conv` reading `concat`'s output, as one node with `conv`'s name,
  /// outputs and attributes.
  static func fusing(_ concat: Node, into conv: Node) -> Node {
    Node(name: conv.name, opType: opType, inputs: ["", conv.inputs[1], conv.inputs.count > 2 ? conv.inputs[2] : ""] + concat.inputs,
         outputs: conv.outputs, attributes: conv.attributes)
  }

  /// The packed weights `panels` (`atr_pack_b`'s layout for k = Cin rows)
  /// rearranged part by part: per part, per panel of columns, the part's
  /// rows, which lie together. Part q then starts at the first row of its
  /// channels times the panels' floats per row of k.
  static func split(_ panels: Tensor, widths: [Int]) -> Tensor {
    let k = widths.reduce(0, +), nr = ConvKernel.panelColumns
    let count = k == 0 ? 0 : panels.count / (k * nr)
    var result = Tensor.uninitialized(shape: panels.shape)  // every float is written
    result.withUnsafeMutableBufferPointer { target in
      panels.withUnsafeBufferPointer { source in
        var first = 0, at = 0
        for width in widths {
          for q in 0..<count {
            (target.baseAddress! + at).initialize(from: source.baseAddress! + (q * k + first) * nr, count: width * nr)
            at += width * nr
          }
          first += width
        }
      }
    }
    return result
  }

  /// The node's 1x1 kernel for parts of `widths` channels at `shape`
  /// (N, H, W), checked, with its packed weights part by part when
  /// `packed` (as `split` lays them out).
  static func kernel(_ c: OpContext, widths: [Int], shape: [Int], packed: Bool) throws -> ConvKernel {
    var kernel = try Convolution.kernel(c, inputShape: [shape[0], widths.reduce(0, +), shape[1], shape[2]])
    guard kernel.isPointwise, kernel.group == 1, kernel.axes.allSatisfy({ $0.output == $0.input }) else {
      throw c.mismatch("a concatenation's parts read by a convolution that is not 1x1 at stride 1 without padding")
    }
    if packed {
      kernel.panels = [try Convolution.prepared(kernel, weights: 1, of: c, "concat-conv-panels", cache: c.cache) {
        split($0.productPanels(group: 0, threads: c.threads), widths: widths)
      }]
    }
    return kernel
  }

  static func run(_ c: inout OpContext) throws -> NDArray {
    let parts = try ShapeOps.channelParts(c, from: parameters), first = parts[0]
    let widths = parts.map { $0.shape[1] }, cin = widths.reduce(0, +)
    let size = [first.shape[0], first.shape[2], first.shape[3]]  // (N, H, W)
    if c.shapesOnly {
      let kernel = try Self.kernel(c, widths: widths, shape: size, packed: false)
      c.path = "concat-parts,im2col" + Pointwise.describe(kernel.epilogue)
      return NDArray(channelsLast: Tensor.uninitialized(shape: size + [kernel.cout]))
    }
    // Settled once per input shape where the weights are constant, as a
    // Conv's plan is (`Convolution.planned`).
    let context = c
    let kernel = try c.cache.flatMap { cache in c.constant.count > 1 && c.constant[1] ? cache : nil }.map { cache in
      try cache.plan(c.index, facts: size + widths) { try Self.kernel(context, widths: widths, shape: size, packed: true) }
    } ?? Self.kernel(c, widths: widths, shape: size, packed: true)
    c.path = "concat-parts,im2col" + Pointwise.describe(kernel.epilogue)
    let cout = kernel.cout
    let shape = size + [cout]  // (N, H, W, Cout)
    // Part q's weights: the rows of its channels, `perChannel` floats each.
    let perChannel = atr_packed_b_size(1, cout)
    let offsets = widths.indices.map { widths[..<$0].reduce(0, +) * perChannel }
    let stores = ShapeOps.channelsLastStores(parts)  // (N, H, W, C_i)
    var output = Tensor.uninitialized(shape: shape)
    let pixels = shape[0] * shape[1] * shape[2]
    let threads = kernel.macs < Convolution.parallelMACs ? 1 : c.threads
    let rows = ConvKernel.epilogueRows(k: cin, n: cout), steps = kernel.epilogue
    ShapeOps.withPointers(stores[...], []) { sources in
      kernel.withWeights { panels, bias in
        output.withUnsafeMutableBufferPointer { out in
          Parallel.bands(pixels, parts: threads, grain: rows) { _, range in
            for start in stride(from: range.lowerBound, to: range.upperBound, by: rows) {
              let count = min(rows, range.upperBound - start)
              let target = out.baseAddress! + start * cout  // (count, Cout)
              // The first part's products start from the bias, the others
              // add to them.
              for (q, width) in widths.enumerated() {
                let a = sources[q]! + start * width, b = panels! + offsets[q]
                if q == 0 {
                  atr_sgemm_packed_sum(count, cout, width, a, width, b, target, cout, bias, nil, cout, 1)
                } else {
                  atr_sgemm_packed(count, cout, width, a, width, b, target, cout, ATR_START_C, nil)
                }
              }
              atr_pointwise(target, count, cout, cout, steps, steps.count)
            }
          }
        }
      }
    }
    return NDArray(channelsLast: output)
  }
}
