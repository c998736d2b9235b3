import AtrousCore
import _CKernels

/// A Mul of a map by per-channel gates (a squeeze-and-excitation block's
/// scale: EfficientNet's, MobileNetV3's, RegNet's), which only a 1x1 Conv
/// reads, run as part of that Conv (made by
/// `GraphOptimizer.fuseChannelScale`): the map is the Conv node's input 0
/// and the gates its input `input`. Where the gates are (1, Cin, 1, 1), one
/// image, and the Conv runs as a product with output channels (rounded up
/// to a panel) fewer than half its pixels, the gates scale the packed
/// weights' rows instead of the map: W (g x) = (W g) x, Cout x Cin
/// multiplies instead of H x W x Cin and no pass over the map. Otherwise
/// the Mul runs first, as the op itself. EfficientNet-B0's gated 1x1
/// convolutions at 112x112 to 28x28 took 0.70 to 0.88 of the time of the
/// Mul and the convolution, those at 14x14 with 80 output channels (96 in
/// panels) as long, with 112 (128) 1.05 (AMD EPYC, 1 thread).
enum ScaledConvolution {
  /// The gates' input position on the Conv node: after the bias, the
  /// residual and a chain's first weights and bias ("" where there are
  /// none; a Conv with gates is no chain).
  static let input = ChainedConvolution.biasInput + 1
  /// Name of the Mul kept on the node, for the Mul run first.
  static let mulAttribute = "_scale_mul"

  /// The node `conv` reading `map` times `gates` (the Mul `mul`) instead of
  /// the Mul's output.
  static func fusing(_ mul: Node, map: String, gates: String, into conv: Node) -> Node {
    var fused = conv
    fused.inputs = [map] + Array((conv.inputs.dropFirst() + [String](repeating: "", count: input)).prefix(input - 1)) + [gates]
    fused.attributes[mulAttribute] = .string(mul.name)
    return fused
  }

  /// The Conv node's gates, if a Mul was fused into it.
  static func gates(of node: Node) -> String? {
    guard node.inputs.count > input, !node.inputs[input].isEmpty else { return nil }
    return node.inputs[input]
  }

  /// The map times the gates, by the Mul operator itself (broadcasting).
  static func product(_ map: NDArray, _ gates: NDArray, of c: OpContext) throws -> NDArray {
    var name = c.node.name
    if case .string(let mul)? = c.node.attributes[mulAttribute] { name = mul }
    var inner = c.nested(Node(name: name, opType: "Mul", inputs: ["", ""], outputs: [""]), inputs: [map, gates])
    inner.consumable = [false, false]
    return try Operators.named("Mul")!.kernel(&inner)[0]
  }

  /// Whether scaling the packed weights by `gates` ((N, Cin, 1, 1)) is
  /// the cheaper way for `kernel`: one image, a 1x1 product of one group,
  /// and output channels, rounded up to the panels', fewer than half the
  /// pixels.
  static func scalesWeights(_ kernel: ConvKernel, strategy: Convolution.Strategy, gates: NDArray) -> Bool {
    let padded = atr_packed_b_size(1, kernel.cout)  // output channels in whole panels
    return strategy == .im2col && kernel.isPointwise && kernel.group == 1 && kernel.n == 1 && !kernel.transposedProduct
      && gates.shape == [1, kernel.cin, 1, 1] && 2 * padded < kernel.pixels && kernel.panels != nil
  }

  /// `panels` (packed for k = Cin rows, `atr_pack_b`) with row k scaled by
  /// gates[k]. Written once, row by row, into new storage: a copy of the
  /// panels scaled in place after (a copy, then an index divided per
  /// panel row) took LR-ASPP's 960 -> 160 products at 20x20 3.6 ms
  /// against 3.5 (AMD EPYC family 23 model 1, AVX2).
  static func scaled(_ panels: Tensor, gates: [Float]) -> Tensor {
    let k = gates.count, nr = ConvKernel.panelColumns, count = panels.count
    var out = Tensor.uninitialized(shape: panels.shape)  // every float is written
    out.withUnsafeMutableBufferPointer { out in
      panels.withUnsafeBufferPointer { source in
        gates.withUnsafeBufferPointer { g in
          var row = 0  // the panel row the nr floats at `start` are: panels are (k, nr)
          for start in stride(from: 0, to: count, by: nr) {
            let gate = g[row], from = source.baseAddress! + start, to = out.baseAddress! + start
            for j in 0..<nr { to[j] = from[j] * gate }
            row = row + 1 == k ? 0 : row + 1
          }
        }
      }
    }
    return out
  }
}
