/// An operator implementation.
typealias OpKernel = @Sendable (inout OpContext) throws -> [NDArray]

/// How the element type of an operator's output follows from its inputs.
enum OutputType: Sendable {
  /// The type of input `k` (unchanged when that input is omitted).
  case input(Int)
  case fixed(DType)
  /// The kernel sets the type itself (Cast, Constant, ...).
  case kernel
}

/// What a shape-only trace knows of one node: its attributes, the shapes
/// of its inputs (nil for an omitted one) and outputs, and the graph's
/// constants (pads and scales given as inputs).
struct TracedNode {
  var node: Node
  var inputShapes: [[Int]?]
  var outputShapes: [[Int]]
  var constants: [String: NDArray] = [:]

  /// Input `k`'s shape when it is a (N, C, H, W) map.
  func map(_ k: Int) -> [Int]? {
    guard k < inputShapes.count, let shape = inputShapes[k], shape.count == 4 else { return nil }
    return shape
  }

  func ints(_ attribute: String) -> [Int]? {
    switch node.attributes[attribute] {
    case .ints(let v)?: v
    case .int(let v)?: [v]
    default: nil
    }
  }

  func int(_ attribute: String) -> Int? {
    if case .int(let v)? = node.attributes[attribute] { return v }
    return nil
  }

  func string(_ attribute: String) -> String? {
    if case .string(let v)? = node.attributes[attribute] { return v }
    return nil
  }
}

/// The receptive field of an op's output given the field its inputs
/// merge to (the largest, on the output's grid).
typealias FieldRule = @Sendable (ReceptiveField, TracedNode) -> ReceptiveField

/// Multiply-accumulates of one run of an op, from its traced shapes.
typealias MACRule = @Sendable (TracedNode) -> Int

/// An operator, described once: its kernel, the element types of its
/// outputs, and what shape-only traces, receptive fields, cost reports
/// and hypercolumn tiling need to know of it.
struct Operator: Sendable {
  var kernel: OpKernel
  /// One entry per output; the last one also serves the outputs after it.
  var outputs: [OutputType]
  /// Whether the kernel reads its first input as float storage: an
  /// integer one (a uint8 MaxPool, say) is converted first, and the
  /// result cast back by `outputs`.
  var floatData = false
  /// Whether the first output has the first input's shape, so a
  /// shape-only trace passes a float input through instead of computing.
  var keepsShape = false
  /// Whether, in a shape-only run (`OpContext.shapesOnly`), the kernel
  /// returns outputs of the right shapes without computing their values.
  /// The executor asks it to only where no later op reads those values.
  var tracesShapes = false
  /// Whether each output position depends only on input positions within
  /// a bounded distance along the image axes, so a tile of the image (with
  /// the margin its receptive field gives) computes the tile's outputs.
  /// Ops not said to be local make hypercolumn extraction run whole.
  var spatiallyLocal = false
  /// How the op changes the receptive field; nil keeps the merged field
  /// of its inputs (elementwise ops, concatenation).
  var field: FieldRule? = nil
  /// Multiply-accumulates of one run; nil counts none.
  var macs: MACRule? = nil

  /// The kernel's results given the element types ONNX defines for them.
  func typed(_ results: [NDArray], inputs: [DType?]) -> [NDArray] {
    func type(_ k: Int) -> DType? {
      switch outputs[Swift.min(k, outputs.count - 1)] {
      case .kernel: return nil
      case .fixed(let fixed): return fixed
      case .input(let i): return i < inputs.count ? inputs[i] : nil
      }
    }
    // Most results already have their type: the array as it is, without
    // a copy per node.
    guard results.indices.contains(where: { k in type(k).map { $0 != results[k].dtype } ?? false }) else { return results }
    return results.enumerated().map { k, result in
      guard let type = type(k), result.dtype != type else { return result }
      return result.cast(to: type)
    }
  }
}

/// Operators by ONNX op type. Setting a kernel by subscript declares the
/// common rule, outputs of the first input's type; `add` declares others;
/// `describe` adds what traces and tiling need.
struct OperatorTable {
  private(set) var operators: [String: Operator] = [:]

  subscript(name: String) -> OpKernel? {
    get { operators[name]?.kernel }
    set { operators[name] = newValue.map { Operator(kernel: $0, outputs: [.input(0)]) } }
  }

  mutating func add(_ name: String, outputs: [OutputType], _ kernel: @escaping OpKernel) {
    operators[name] = Operator(kernel: kernel, outputs: outputs)
  }

  /// Describes registered ops; an argument left nil leaves that part as it is.
  mutating func describe(_ names: [String], floatData: Bool? = nil, keepsShape: Bool? = nil, tracesShapes: Bool? = nil,
                         spatiallyLocal: Bool? = nil, field: FieldRule? = nil, macs: MACRule? = nil) {
    for name in names {
      precondition(operators[name] != nil, "\(name) is described before it is registered")
      if let floatData { operators[name]!.floatData = floatData }
      if let tracesShapes { operators[name]!.tracesShapes = tracesShapes }
      if let keepsShape { operators[name]!.keepsShape = keepsShape }
      if let spatiallyLocal { operators[name]!.spatiallyLocal = spatiallyLocal }
      if let field { operators[name]!.field = field }
      if let macs { operators[name]!.macs = macs }
    }
  }
}

/// Every supported operator, by ONNX op type.
public enum Operators {
  static func named(_ op: String) -> Operator? { table.operators[op] }

  /// Whether an op computes each output position from nearby input
  /// positions only (false for unknown ops), so hypercolumns can be tiled.
  public static func isSpatiallyLocal(_ op: String) -> Bool { named(op)?.spatiallyLocal ?? false }

  static let table: OperatorTable = {
    var table = OperatorTable()
    Elementwise.register(&table)
    ShapeOps.register(&table)
    Convolution.register(&table)
    Pooling.register(&table)
    Normalization.register(&table)
    Linear.register(&table)
    Resize.register(&table)
    Pointwise.register(&table)
    Reduce.register(&table)
    IndexOps.register(&table)
    Quantization.register(&table)
    Sampling.register(&table)
    Detection.register(&table)
    Einsum.register(&table)
    ChannelShuffle.register(&table)
    InterleaveChannels.register(&table)
    ConcatBatchNorm.register(&table)
    ConcatConvolution.register(&table)
    StridedGather.register(&table)
    DepthwiseBlock.register(&table)
    return table
  }()
}
