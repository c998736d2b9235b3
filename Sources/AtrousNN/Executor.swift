import AtrousCore

/// Runs a graph: nodes in order, each value freed as soon as no later node
/// needs it (unless it was asked for).
public final class Executor: Sendable {
  /// The graph as given.
  public let graph: Graph
  /// The graph with BatchNormalization folded and element-wise chains
  /// fused; it lacks the intermediate values those rewrites remove, so a
  /// run asking for one of them runs `graph` instead.
  public let optimized: Graph
  /// Every value a run of `optimized` can return.
  private let optimizedValues: Set<String>
  /// Threads an op may use.
  public let threads: Int
  private let prepared = PreparedWeights()
  private let preparedPlain = PreparedWeights()

  /// - Parameter optimize: fold BatchNormalization into the convolution
  ///   before it where that convolution feeds nothing else, and run chains
  ///   of element-wise ops in one pass (see `GraphOptimizer`).
  /// - Throws: `NNError.unsupportedOp` naming the first node whose op is
  ///   not implemented, `NNError.missingInput` for an input no graph input,
  ///   initializer or earlier node provides (a value used before it is
  ///   made, which includes every cycle), `NNError.duplicateNode` and
  ///   `NNError.duplicateValue` for names ONNX requires to be unique.
  public init(graph: Graph, threads: Int = Parallel.coreCount, optimize: Bool = true) throws {
    try Self.validate(graph)
    self.graph = graph
    self.optimized = optimize ? GraphOptimizer.fusePointwise(GraphOptimizer.foldBatchNorm(graph)) : graph
    optimizedValues = Set(optimized.nodes.flatMap(\.outputs)).union(optimized.inputs.map(\.name))
      .union(optimized.initializers.keys)
    self.threads = threads
  }

  /// Checks ONNX's structural rules: known ops, node names and value
  /// names unique, every input made before it is read.
  static func validate(_ graph: Graph) throws {
    var known = Set(graph.inputs.map(\.name)).union(graph.initializers.keys)
    var names = Set<String>()
    for node in graph.nodes {
      guard Operators.named(node.opType) != nil else { throw NNError.unsupportedOp(node: node.name, op: node.opType) }
      guard names.insert(node.name).inserted else { throw NNError.duplicateNode(node: node.name, op: node.opType) }
      for input in node.inputs where !input.isEmpty && !known.contains(input) {
        throw NNError.missingInput(node: node.name, op: node.opType, input: input)
      }
      for output in node.outputs where !output.isEmpty {
        guard known.insert(output).inserted else {
          throw NNError.duplicateValue(node: node.name, op: node.opType, value: output)
        }
      }
    }
    for output in graph.outputs where !known.contains(output) { throw NNError.unknownValue(name: output) }
  }

  /// Ops whose single output has the shape and layout of their first input.
  static let shapePreserving: Set<String> = [
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Elu", "Sqrt", "Abs", "Neg", "Exp", "Log",
    "Swish", "Gelu", "Erf", "Mish", "Softplus", "Selu", "Celu",
    "Identity", "BatchNormalization", "LRN", Pointwise.opType,
  ]

  /// The graph inputs that are not constants.
  public var inputNames: [String] {
    graph.inputs.map(\.name).filter { graph.initializers[$0] == nil }
  }

  /// One node of a traced run.
  public struct TraceStep: Sendable {
    public var node: Node
    /// Shapes of the node's inputs (nil for omitted optional inputs).
    public var inputShapes: [[Int]?]
    public var outputShapes: [[Int]]
  }

  /// Runs the graph in shape-only mode, recording every node's shapes and
  /// the peak memory of the values alive at once.
  public func trace(_ inputs: [String: NDArray]) throws -> (steps: [TraceStep], peakBytes: Int) {
    var steps: [TraceStep] = []
    var peak = 0
    _ = try execute(graph, prepared: preparedPlain, inputs, wanted: graph.outputs, shapesOnly: true) { node, args, results, liveBytes, _ in
      steps.append(TraceStep(node: node, inputShapes: args.map { $0?.shape }, outputShapes: results.map(\.shape)))
      peak = max(peak, liveBytes)
    }
    return (steps, peak)
  }

  /// Runs the graph.
  /// - Parameters:
  ///   - inputs: a value for every non-constant graph input, standard layout.
  ///   - outputs: names to return (default: the graph outputs); any
  ///     intermediate value may be named.
  /// - Returns: the requested values in standard (ONNX) layout.
  ///   - standardLayout: return values in ONNX layout (the default), or as
  ///     stored, rank-4 floats channels-last, saving a transpose for
  ///     callers that want (N, H, W, C) anyway.
  public func run(_ inputs: [String: NDArray], outputs requested: [String]? = nil,
                  standardLayout: Bool = true) throws -> [String: NDArray] {
    let wanted = requested ?? graph.outputs
    let (plan, cache) = wanted.allSatisfy(optimizedValues.contains) ? (optimized, prepared) : (graph, preparedPlain)
    return try execute(plan, prepared: cache, inputs, wanted: wanted, shapesOnly: false, standardLayout: standardLayout) {
      _, _, _, _, _ in
    }
  }

  /// One node's share of a profiled run.
  public struct NodeTiming: Sendable {
    public var name: String
    public var op: String
    /// Wall time from the end of the node before to the end of this one.
    public var milliseconds: Double
    /// The first output's shape, ONNX order.
    public var outputShape: [Int]
    /// How it ran: the op, or the kernel strategy and what was fused into it.
    public var path: String
  }

  /// Runs the graph as `run` does and also returns how long each node of
  /// the graph that ran took, in order.
  public func profiledRun(_ inputs: [String: NDArray], outputs requested: [String]? = nil)
    throws -> (values: [String: NDArray], nodes: [NodeTiming])
  {
    let wanted = requested ?? graph.outputs
    let (plan, cache) = wanted.allSatisfy(optimizedValues.contains) ? (optimized, prepared) : (graph, preparedPlain)
    var timings: [NodeTiming] = []
    let clock = ContinuousClock()
    var last = clock.now
    let values = try execute(plan, prepared: cache, inputs, wanted: wanted, shapesOnly: false) { node, _, results, _, path in
      let now = clock.now
      timings.append(NodeTiming(name: node.name, op: node.opType, milliseconds: (now - last).milliseconds,
                                outputShape: results.first?.shape ?? [], path: path ?? node.opType))
      last = now
    }
    return (values, timings)
  }

  private func execute(_ graph: Graph, prepared: PreparedWeights, _ inputs: [String: NDArray], wanted: [String],
                       shapesOnly: Bool, standardLayout: Bool = true,
                       observe: (Node, [NDArray?], [NDArray], Int, String?) -> Void) throws -> [String: NDArray] {
    var values: [String: NDArray] = graph.initializers
    for input in graph.inputs where graph.initializers[input.name] == nil {
      guard let value = inputs[input.name] else {
        throw NNError.badGraphInput(name: input.name, reason: "no value given")
      }
      guard input.shape.isEmpty || value.rank == input.shape.count else {
        throw NNError.badGraphInput(name: input.name, reason: "rank \(value.rank) given, rank \(input.shape.count) declared")
      }
      for (given, declared) in zip(value.shape, input.shape) where declared != nil && declared! > 0 && declared! != given {
        throw NNError.badGraphInput(name: input.name,
                                    reason: "shape \(value.shape) given, \(input.shape.map { $0.map(String.init) ?? "?" }) declared")
      }
      // Values of the declared kind convert to the declared type (a float64
      // .npy feeds a float model, as NumPy users expect); across kinds
      // (floats for integers, say) they are refused.
      if let declared = input.dtype, declared != value.dtype {
        guard declared.isFloatingPoint == value.dtype.isFloatingPoint else {
          throw NNError.badGraphInput(name: input.name, reason: "type \(value.dtype) given, \(declared) declared")
        }
        values[input.name] = value.cast(to: declared)
      } else {
        values[input.name] = value
      }
    }
    for (name, value) in inputs where values[name] == nil { values[name] = value }

    // The last node that reads each value; values nobody reads later are dropped.
    var lastUse: [String: Int] = [:]
    for (index, node) in graph.nodes.enumerated() {
      for name in node.inputs where !name.isEmpty { lastUse[name] = index }
    }
    let keep = Set(wanted)
    let produced = Set(graph.nodes.flatMap(\.outputs)).union(values.keys)
    for name in wanted where !produced.contains(name) { throw NNError.unknownValue(name: name) }

    for (index, node) in graph.nodes.enumerated() {
      let args: [NDArray?] = try node.inputs.map { name in
        if name.isEmpty { return nil }
        guard let value = values[name] else { throw NNError.missingInput(node: node.name, op: node.opType, input: name) }
        return value
      }
      let consumable = node.inputs.map { name in
        !name.isEmpty && lastUse[name] == index && !keep.contains(name) && graph.initializers[name] == nil
      }
      // Values read for the last time leave the table now, so an op that
      // takes them holds the only reference and may write in place.
      for (name, last) in zip(node.inputs, consumable) where last { values[name] = nil }
      let op = Operators.named(node.opType)!
      let types = args.map { $0?.dtype }
      var context = OpContext(node: node, index: index, inputs: args, opset: graph.opset, threads: threads)
      if op.floatData, let first = args.first ?? nil, !first.isFloat { context.inputs[0] = first.cast(to: .float32) }
      context.shapesOnly = shapesOnly
      context.cache = prepared
      context.constant = node.inputs.map { graph.initializers[$0] != nil }
      context.consumable = consumable
      context.standardOutput = standardLayout && node.outputs.allSatisfy { keep.contains($0) && lastUse[$0] == nil }
      // A shape-only run passes values through ops that keep their input's
      // shape, instead of computing on placeholder data.
      let results = shapesOnly && Self.shapePreserving.contains(node.opType) && args.first??.isFloat == true
        ? [args[0]!] : op.typed(try op.kernel(&context), inputs: types)
      for (name, value) in zip(node.outputs, results) where !name.isEmpty { values[name] = value }
      // Inputs read for the last time are still alive while the op runs.
      let released = zip(args, consumable).reduce(0) { $0 + ($1.1 ? ($1.0?.count ?? 0) * 4 : 0) }
      let live = shapesOnly
        ? values.filter { graph.initializers[$0.key] == nil }.values.reduce(released) { $0 + $1.count * 4 } : 0
      observe(node, args, results, live, context.path)
      for name in node.inputs where !name.isEmpty && lastUse[name] == index && !keep.contains(name)
        && graph.initializers[name] == nil
      {
        values[name] = nil
      }
    }
    var result: [String: NDArray] = [:]
    for name in wanted {
      guard let value = values[name] else { throw NNError.unknownValue(name: name) }
      result[name] = standardLayout ? value.standard() : value
    }
    return result
  }
}
