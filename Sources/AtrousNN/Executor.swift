import AtrousCore

/// Runs a graph: nodes in order, each value freed as soon as no later node
/// needs it (unless it was asked for).
public final class Executor: Sendable {
  /// The graph as given.
  public let graph: Graph
  /// The graph with BatchNormalization folded and element-wise chains
  /// fused; it lacks the intermediate values those rewrites remove, so a
  /// run asking for one of them runs the graph rewritten keeping them.
  public let optimized: Graph
  /// Every value a run of `optimized` can return.
  private let optimizedValues: Set<String>
  /// Threads an op may use.
  public let threads: Int
  private let prepared = PreparedWeights()
  private let preparedPlain = PreparedWeights()
  private let optimizes: Bool
  /// Graphs rewritten keeping other values than the outputs, with their
  /// prepared weights, by the values kept.
  private let variants = MemoCache<Set<String>, (Graph, PreparedWeights)>()

  /// The graph that computes `wanted`: the optimized one when it has them,
  /// else one optimized keeping them (made once per set), or the graph as
  /// given when optimization is off.
  private func runnable(_ wanted: [String]) -> (Graph, PreparedWeights) {
    if wanted.allSatisfy(optimizedValues.contains) { return (optimized, prepared) }
    guard optimizes else { return (graph, preparedPlain) }
    let keep = Set(wanted)
    return variants.value(keep) { (GraphOptimizer.optimize(graph, keep: keep), PreparedWeights()) }
  }

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
    self.optimized = optimize ? GraphOptimizer.optimize(graph, keep: []) : graph
    self.optimizes = optimize
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
    // The values are placeholders: nothing converts them to the standard layout.
    _ = try execute(graph, prepared: preparedPlain, inputs, wanted: graph.outputs, shapesOnly: true,
                    standardLayout: false) { node, args, results, liveBytes, _ in
      steps.append(TraceStep(node: node, inputShapes: args, outputShapes: results.map(\.shape)))
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
    let (plan, cache) = runnable(wanted)
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
    let (plan, cache) = runnable(wanted)
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
                       observe: (Node, [[Int]?], [NDArray], Int, String?) -> Void) throws -> [String: NDArray] {
    // From here the run's threads want the cores; after it, what was
    // faulted in ahead and not taken goes back.
    if !shapesOnly { LargeBlockPool.stopFaultingAhead() }
    defer { if !shapesOnly { LargeBlockPool.trimFaultedAhead() } }
    // Layout changes and other loops not handed a thread count keep to
    // the executor's threads too.
    return try Parallel.$budget.withValue(threads) {
      try executeNodes(graph, prepared: prepared, inputs, wanted: wanted, shapesOnly: shapesOnly,
                       standardLayout: standardLayout, observe: observe)
    }
  }

  private func executeNodes(_ graph: Graph, prepared: PreparedWeights, _ inputs: [String: NDArray], wanted: [String],
                            shapesOnly: Bool, standardLayout: Bool,
                            observe: (Node, [[Int]?], [NDArray], Int, String?) -> Void) throws -> [String: NDArray] {
    let plan = try compiled(graph, prepared: prepared, wanted: wanted, standardLayout: standardLayout)
    var values = [NDArray?](repeating: nil, count: plan.slotCount)  // by slot
    for (slot, value) in plan.constants { values[slot] = value }
    for (input, slot) in plan.inputs {
      guard let value = inputs[input.name] else {
        throw NNError.badGraphInput(name: input.name, reason: "no value given")
      }
      guard input.shape.isEmpty || value.rank == input.shape.count else {
        throw NNError.badGraphInput(name: input.name, reason: "rank \(value.rank) given, rank \(input.shape.count) declared")
      }
      for (given, declared) in zip(value.shape, input.shape) where declared != nil && declared! > 0 && declared! != given {
        throw NNError.badGraphInput(name: input.name,
                                    reason: "shape \(value.shape) given, [\(input.shape.map { $0.map(String.init) ?? "?" }.joined(separator: ", "))] declared")
      }
      // Values of the declared kind convert to the declared type (a float64
      // .npy feeds a float model, as NumPy users expect); across kinds
      // (floats for integers, say) they are refused.
      if let declared = input.dtype, declared != value.dtype {
        guard declared.isFloatingPoint == value.dtype.isFloatingPoint else {
          throw NNError.badGraphInput(name: input.name, reason: "type \(value.dtype) given, \(declared) declared")
        }
        values[slot] = value.cast(to: declared).storageRounded()
      } else {
        values[slot] = value
      }
    }

    for (index, step) in plan.steps.enumerated() {
      let node = graph.nodes[index]
      var args = [NDArray?](repeating: nil, count: step.inputs.count)
      for (k, slot) in step.inputs.enumerated() {
        guard let slot else { continue }
        guard let value = values[slot] else { throw NNError.missingInput(node: node.name, op: node.opType, input: node.inputs[k]) }
        args[k] = value
      }
      // Values read for the last time leave the table now, so an op that
      // takes them holds the only reference and may write in place.
      for (k, slot) in step.inputs.enumerated() where step.consumable[k] { values[slot!] = nil }
      let types = args.map { $0?.dtype }
      let shapes = shapesOnly ? args.map { $0?.shape } : []
      let released = shapesOnly ? zip(args, step.consumable).reduce(0) { $0 + ($1.1 ? ($1.0?.count ?? 0) * 4 : 0) } : 0
      let first = args.first ?? nil
      var context = OpContext(node: node, index: index, inputs: args, opset: graph.opset, threads: threads)
      args = []
      if step.op.floatData, let first, !first.isFloat { context.inputs[0] = first.cast(to: .float32) }
      context.shapesOnly = shapesOnly && step.traces
      context.cache = prepared
      context.isGraphNode = true
      context.constant = step.constant
      context.consumable = step.consumable
      context.standardOutput = step.standardOutput
      // A shape-only run passes values through ops that keep their input's
      // shape, instead of computing on placeholder data.
      let passThrough = shapesOnly && step.traces && first?.isFloat == true && step.op.keepsShape
        && node.outputs.dropFirst().allSatisfy(\.isEmpty)
      var results = passThrough ? [first!] : step.op.typed(try step.op.kernel(&context), inputs: types)
      if step.roundsFloat16 { results = results.map { $0.storageRounded() } }
      context.inputs = []
      for (slot, value) in zip(step.outputs, results) { if let slot { values[slot] = value } }
      // Inputs read for the last time are still alive while the op runs.
      let live = shapesOnly
        ? zip(values, plan.isConstant).reduce(released) { $0 + ($1.1 ? 0 : ($1.0?.count ?? 0) * 4) } : 0
      observe(node, shapes, results, live, context.path)
    }
    var result: [String: NDArray] = [:]
    for (name, slot) in plan.wanted {
      guard let value = values[slot] else { throw NNError.unknownValue(name: name) }
      result[name] = (standardLayout ? value.standard() : value).storageRounded()
    }
    return result
  }

  /// A graph made ready to run for one set of wanted values: every value
  /// numbered (a slot), and per node, where its inputs and outputs live,
  /// which inputs it reads for the last time, which are constants, and
  /// whether its output leaves the graph in the standard layout.
  struct Plan: Sendable {
    struct Step: Sendable {
      var op: Operator
      var inputs: [Int?]
      var outputs: [Int?]
      var consumable: [Bool]
      var constant: [Bool]
      var standardOutput: Bool
      /// Whether a shape-only run skips the node's computation.
      var traces = false
      /// Whether the outputs are rounded to float16 where they are made
      /// (see `float16Storage`).
      var roundsFloat16 = false
    }

    var slotCount: Int
    var constants: [(Int, NDArray)]
    var isConstant: [Bool]
    var inputs: [(Graph.Input, Int)]
    var steps: [Step]
    var wanted: [(String, Int)]
  }

  private struct PlanKey: Hashable {
    /// The weights store of the graph the plan is for (one per graph).
    var graph: ObjectIdentifier
    var wanted: [String]
    var standardLayout: Bool
  }

  /// Plans made so far, by graph, wanted values and layout.
  private let plans = MemoCache<PlanKey, Plan>()

  private func compiled(_ graph: Graph, prepared: PreparedWeights, wanted: [String], standardLayout: Bool) throws -> Plan {
    let key = PlanKey(graph: ObjectIdentifier(prepared), wanted: wanted, standardLayout: standardLayout)
    return try plans.value(key) { try Self.plan(graph, wanted: wanted, standardLayout: standardLayout) }
  }

  /// Ops that ONNX Runtime's CPU provider runs on float16 storage: those
  /// that move values without computing. Every other op computes float16
  /// in float32, and casts between such ops are removed, so inside a graph
  /// float16 values keep float32 precision (see `NDArray.cast(to:)`). A
  /// Cast to float16 read by one of these ops is rounded where it is made,
  /// as ONNX Runtime's real float16 tensor is: a Cast pair float32 ->
  /// float16 -> float32 quantizes, a Cast to float16 before a MatMul does not.
  /// Identity is not among them: ONNX Runtime removes it first.
  static let float16Storage: Set<String> = [
    "Cast", "CastLike", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split",
    "Slice", "Gather", "GatherElements", "GatherND", "Expand", "Tile", "Pad", "DepthToSpace", "SpaceToDepth",
  ]

  static func plan(_ graph: Graph, wanted: [String], standardLayout: Bool) throws -> Plan {
    var slots: [String: Int] = [:]
    func slot(_ name: String) -> Int {
      if let found = slots[name] { return found }
      slots[name] = slots.count
      return slots.count - 1
    }
    let constants = graph.initializers.map { (slot($0.key), $0.value) }
    let inputs = graph.inputs.filter { graph.initializers[$0.name] == nil }.map { ($0, slot($0.name)) }
    var lastUse: [String: Int] = [:]
    for (index, node) in graph.nodes.enumerated() {
      for name in node.inputs where !name.isEmpty { lastUse[name] = index }
    }
    let keep = Set(wanted)
    let produced = Set(graph.nodes.flatMap(\.outputs)).union(graph.initializers.keys).union(graph.inputs.map(\.name))
    for name in wanted where !produced.contains(name) { throw NNError.unknownValue(name: name) }
    var steps = try graph.nodes.enumerated().map { index, node -> Plan.Step in
      guard let op = Operators.named(node.opType) else { throw NNError.unsupportedOp(node: node.name, op: node.opType) }
      let consumable = node.inputs.map { name in
        !name.isEmpty && lastUse[name] == index && !keep.contains(name) && graph.initializers[name] == nil
      }
      return Plan.Step(op: op, inputs: node.inputs.map { $0.isEmpty ? nil : slot($0) },
                       outputs: node.outputs.map { $0.isEmpty ? nil : slot($0) }, consumable: consumable,
                       constant: node.inputs.map { graph.initializers[$0] != nil },
                       standardOutput: standardLayout && node.outputs.allSatisfy { keep.contains($0) && lastUse[$0] == nil })
    }
    // Op types by the value whose elements they read (CastLike's second
    // input gives a type, a Reshape's second its shape).
    var readers: [String: [String]] = [:]
    for node in graph.nodes {
      for name in node.opType == "Concat" ? node.inputs : Array(node.inputs.prefix(1)) where !name.isEmpty {
        readers[name, default: []].append(node.opType)
      }
    }
    for (index, node) in graph.nodes.enumerated() where node.opType == "Cast" {
      if case .int(DType.float16.rawValue)? = node.attributes["to"],
        readers[node.outputs[0], default: []].contains(where: float16Storage.contains) {
        steps[index].roundsFloat16 = true
      }
    }
    var isConstant = [Bool](repeating: false, count: slots.count)
    for (s, _) in constants { isConstant[s] = true }
    // Which nodes a shape-only run may skip (placeholders, or the input
    // passed through): those that can, whose outputs no computing node
    // reads. A node that computes needs real values of all its inputs, so
    // the walk goes from the last node back.
    var needed = [Bool](repeating: false, count: slots.count)
    for index in steps.indices.reversed() {
      let step = steps[index]
      let skippable = step.op.tracesShapes || step.op.keepsShape
      steps[index].traces = skippable && !step.outputs.contains { $0.map { needed[$0] } ?? false }
      if !steps[index].traces { for case let slot? in step.inputs { needed[slot] = true } }
    }
    return Plan(slotCount: slots.count, constants: constants, isConstant: isConstant, inputs: inputs, steps: steps,
                wanted: wanted.map { ($0, slot($0)) })
  }

}
