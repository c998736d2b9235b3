import AtrousCore
import _CKernels

/// An Add of a 3x3 or 1x1 Conv's output, which nothing else reads and
/// which has no fused steps of its own, and another value (a residual
/// block's sum), run as part of that Conv (made by
/// `GraphOptimizer.fuseResidualAdd`): the other operand is the Conv node's
/// input `input`, the Add's attributes (its fused steps) are on the node
/// under `attributePrefix`, and the node has the Add's output. Winograd's
/// output transform adds each pixel's residual as it writes the pixel, so
/// ResNet's sums and the ReLU after them take no pass of their own
/// (ResNet-18 0.97 to 0.98 of the time, 1 and 2 threads); a 1x1 product
/// adds it to each block of rows it makes while they are in cache
/// (`ConvKernel.productRows`), as the steps follow. Where the convolution
/// runs another way (direct by the cost rule or `ATROUS_EXACT_CONV`, on
/// planes, as a matrix-vector product) or the operands' shapes differ,
/// the Add runs after.
enum ResidualConvolution {
  /// The residual's input position on the Conv node (after the bias, "" when
  /// there is none).
  static let input = 3
  /// Prefix of the Add's attributes on the Conv node.
  static let attributePrefix = "_add_"

  /// The node `conv` (a Conv, or a `_DepthwiseBlock` whose residual comes
  /// at `DepthwiseBlock.residualInput`) with the Add `add` of its output
  /// and `residual` after it.
  static func fusing(_ add: Node, residual: String, into conv: Node, at position: Int = input) -> Node {
    var fused = conv
    fused.inputs = Array((conv.inputs + [String](repeating: "", count: position)).prefix(position)) + [residual]
    fused.carry(add.attributes, under: attributePrefix)
    fused.outputs = add.outputs
    return fused
  }

  /// The Add fused into `node` (its residual at `position`), as a node of
  /// its own reading the convolution's output and the residual, or nil.
  static func add(of node: Node, at position: Int = input) -> Node? {
    guard node.inputs.count > position, !node.inputs[position].isEmpty, let output = node.outputs.first else { return nil }
    return Node(name: node.name, opType: "Add", inputs: [output, node.inputs[position]], outputs: node.outputs,
                attributes: node.carried(under: attributePrefix))
  }

  /// The Add fused into a node, its steps, and what a profile's path adds
  /// for it where the kernel sums (`inKernel`) and where the Add runs
  /// after (`after`). A class: read back on every run, a reference is one
  /// count to take where a struct's fields are one each.
  final class Fused {
    let add: Node
    let steps: [atr_pointwise_step]
    let inKernel: String
    let after: String

    init(add: Node, steps: [atr_pointwise_step]) {
      let named = Pointwise.describe(steps)
      (self.add, self.steps, inKernel, after) = (add, steps, "+add" + named, ",add" + named)
    }
  }

  /// The Add fused into `c`'s node (its residual at `position`), once per
  /// executor (`OpContext.derived`), or nil.
  static func fused(_ c: OpContext, at position: Int = input) throws -> Fused? {
    let opset = c.opset
    return try c.derived { node in
      guard let add = add(of: node, at: position) else { return nil }
      return Fused(add: add, steps: try Pointwise.epilogue(of: OpContext(node: add, inputs: [], opset: opset, threads: 1)))
    }
  }

  /// The Add run after the convolution: `y` plus the residual, by the Add
  /// operator itself (broadcasting, its steps).
  static func sum(_ add: Node, _ y: NDArray, residual: NDArray, of c: OpContext) throws -> [NDArray] {
    var inner = c.nested(add, inputs: [y, residual])
    inner.consumable = [true, false]
    return try Operators.named("Add")!.kernel(&inner)
  }
}
