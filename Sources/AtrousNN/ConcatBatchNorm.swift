import AtrousCore
import _CKernels

/// The internal op `_ConcatBatchNorm` (made by
/// `GraphOptimizer.fuseConcatBatchNorm`, never found in a model file): a
/// BatchNormalization, with its fused steps, of a concatenation along the
/// channels that nothing else reads, as DenseNet's layers begin. Each
/// output pixel's channels are made from the parts as they are copied, so
/// the concatenation is never written: one pass over the parts instead of
/// a copy and a batch norm over the copy (DenseNet-121's 58 concatenations
/// copied 3.3 ms of its 95, 1 thread).
///
/// Inputs: the BatchNormalization's scale, B, mean and variance, then the
/// parts, (N, C_i, H, W) each. Attributes: the BatchNormalization's.
enum ConcatBatchNorm {
  /// The leading underscore keeps it apart from ONNX's op types.
  static let opType = "_ConcatBatchNorm"
  /// Inputs before the first part.
  static let parameters = 4

  static func register(_ table: inout OperatorTable) {
    table[opType] = { c in [try run(&c)] }
    table.describe([opType], floatData: true, tracesShapes: true, spatiallyLocal: true)
  }

  /// `bn` (a BatchNormalization) reading `concat`'s output, as one node
  /// with `bn`'s name, outputs and attributes.
  static func fusing(_ concat: Node, into bn: Node) -> Node {
    Node(name: bn.name, opType: opType, inputs: Array(bn.inputs[1...4]) + concat.inputs, outputs: bn.outputs,
         attributes: bn.attributes)
  }

  /// Output pixels per piece of work: the rows made and then stepped
  /// while they are in cache: about 16 KiB of them, at least 8.
  static func chunk(channels: Int) -> Int { max(8, 4096 / max(1, channels)) }

  static func run(_ c: inout OpContext) throws -> NDArray {
    let parts = try ShapeOps.channelParts(c, from: parameters), first = parts[0]
    let widths = parts.map { $0.shape[1] }, channels = widths.reduce(0, +)
    let (a, b) = try Normalization.batchNormAffine(c, parameters: 0, channels: channels)
    let steps = try Pointwise.epilogue(of: c)
    c.path = "concat+channels" + Pointwise.describe(steps)
    let shape = [first.shape[0], first.shape[2], first.shape[3], channels]  // (N, H, W, C)
    if c.shapesOnly { return NDArray(channelsLast: Tensor.uninitialized(shape: shape)) }
    let stores = ShapeOps.channelsLastStores(parts)  // (N, H, W, C_i)
    var output = Tensor.uninitialized(shape: shape)
    let pixels = shape[0] * shape[1] * shape[2], step = chunk(channels: channels)
    let ranges = Parallel.ranges(pixels, parts: output.count >= Elementwise.parallelThreshold ? c.threads : 1)
    ShapeOps.withPointers(stores[...], []) { sources in
      a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
        output.withUnsafeMutableBufferPointer { out in
          Parallel.run(ranges.count) { part in
            var rows = sources  // each part's first row of the chunk
            for start in stride(from: ranges[part].lowerBound, to: ranges[part].upperBound, by: step) {
              let count = min(step, ranges[part].upperBound - start)
              for q in rows.indices { rows[q] = sources[q].map { $0 + start * widths[q] } }
              let target = out.baseAddress! + start * channels
              atr_concat_rows(target, count, rows, widths, widths.count, pa.baseAddress!, pb.baseAddress!)
              atr_pointwise(target, 1, count * channels, count * channels, steps, steps.count)
            }
          }
        }
      } }
    }
    return NDArray(channelsLast: output)
  }
}
