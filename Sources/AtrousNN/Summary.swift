import AtrousCore

/// One row of a network summary: a node, its first output and what it costs.
public struct LayerSummary: Sendable {
  /// The node's first output: the name `--outputs` and hypercolumn layers use.
  public var name: String
  public var node: String
  public var op: String
  public var outputShape: [Int]
  /// Weights the node reads (float initializer elements, each counted once per graph).
  public var parameters: Int
  /// Multiply-accumulates of one run.
  public var macs: Int
  public var receptiveField: ReceptiveField
}

/// Shapes, parameters, cost and receptive fields of every layer, found by
/// running the graph in shape-only mode: convolutions, products, pooling,
/// element-wise arithmetic, Concat, Slice and Transpose give placeholders
/// of their output shapes, and shape-keeping ops pass their input through,
/// except where a later op reads their values.
public struct NetworkSummary: Sendable {
  public var layers: [LayerSummary]
  /// Largest total size of the values alive at once, in bytes.
  public var peakActivationBytes: Int
  public var totalParameters: Int { layers.map(\.parameters).reduce(0, +) }
  public var totalMACs: Int { layers.map(\.macs).reduce(0, +) }

  /// Elements a traced input may have: 2^31 (8 GB of float32).
  public static let maxInputElements = 1 << 31

  /// - Parameters:
  ///   - inputShapes: a zero input of each graph input's shape will do.
  ///   - maxInputElements: elements a traced input may have.
  /// - Throws: `NNError.badGraphInput` for an input whose shape is not
  ///   fixed or has more than `maxInputElements` elements.
  public init(graph: Graph, inputShapes: [String: [Int]], maxInputElements: Int = NetworkSummary.maxInputElements) throws {
    let executor = try Executor(graph: graph)
    var inputs: [String: NDArray] = [:]
    for name in executor.inputNames {
      guard let shape = inputShapes[name] ?? graph.inputs.first(where: { $0.name == name }).flatMap({ s in
        s.shape.allSatisfy({ $0 != nil }) ? s.shape.map { $0! } : nil
      }) else {
        throw NNError.badGraphInput(name: name, reason: "its shape is not fixed; give an input size")
      }
      // The trace runs on a zero input of that shape, so a declared shape
      // must be one a machine can hold (a shape of 1x1x100000x100000 asked
      // for 40 GB; one whose product overflows trapped).
      var elements = 1
      for dim in shape {
        let (product, overflow) = elements.multipliedReportingOverflow(by: Swift.max(dim, 0))
        guard !overflow, product <= maxInputElements else {
          throw NNError.badGraphInput(name: name, reason: "its shape \(shape) has more than \(maxInputElements) elements")
        }
        elements = product
      }
      try MemoryBudget.check(elements, of: 4) {
        NNError.badGraphInput(name: name, reason: "its shape \(shape) would take \(MemoryBudget.format($0)), more than \($1)")
      }
      let type = graph.inputs.first(where: { $0.name == name })?.dtype ?? .float32
      inputs[name] = NDArray(shape: shape, floats: Tensor(shape: shape)).cast(to: type)
    }
    var fields: [String: ReceptiveField] = [:]
    for name in inputs.keys { fields[name] = .input }
    var counted = Set<String>()
    var layers: [LayerSummary] = []
    let trace = try executor.trace(inputs)
    peakActivationBytes = trace.peakBytes
    for step in trace.steps {
      let node = step.node
      let field = Self.field(node, fields: fields, inputShapes: step.inputShapes, outputShapes: step.outputShapes,
                             constants: graph.initializers)
      for output in node.outputs where !output.isEmpty { fields[output] = field }
      var parameters = 0
      // Weights only: integer constants (pads, shapes, axes) are not parameters.
      for name in node.inputs where graph.initializers[name]?.isFloat == true && !counted.contains(name) {
        counted.insert(name)
        parameters += graph.initializers[name]!.count
      }
      layers.append(LayerSummary(name: node.outputs.first ?? node.name, node: node.name, op: node.opType,
                                 outputShape: step.outputShapes.first ?? [], parameters: parameters,
                                 macs: Self.macs(node, step), receptiveField: field))
    }
    self.layers = layers
  }

  static func macs(_ node: Node, _ step: Executor.TraceStep) -> Int {
    let traced = TracedNode(node: node, inputShapes: step.inputShapes, outputShapes: step.outputShapes)
    return Operators.named(node.opType)?.macs?(traced) ?? 0
  }

  /// Propagates receptive fields: ops that merge branches take the largest
  /// incoming field, and each op's own rule (windows, resizing, global
  /// pooling) changes it from there.
  static func field(_ node: Node, fields: [String: ReceptiveField], inputShapes: [[Int]?], outputShapes: [[Int]],
                    constants: [String: NDArray] = [:]) -> ReceptiveField {
    let incoming = node.inputs.compactMap { fields[$0] }
    guard var base = incoming.max(by: { $0.size[0] * $0.size[1] < $1.size[0] * $1.size[1] }) else { return .input }
    // Merging branches: the largest field, but the grid (jump and start) of
    // an input with the output's spatial size (a broadcast 1x1 map, as in
    // squeeze-and-excite, has no grid of its own).
    if incoming.count > 1, let out = outputShapes.first, out.count == 4 {
      let aligned = node.inputs.indices.filter { i in
        guard i < inputShapes.count, let shape = inputShapes[i], shape.count == 4, fields[node.inputs[i]] != nil else { return false }
        return shape[2] == out[2] && shape[3] == out[3]
      }.compactMap { fields[node.inputs[$0]] }
      if let grid = aligned.max(by: { $0.size[0] * $0.size[1] < $1.size[0] * $1.size[1] }) {
        base.jump = grid.jump
        base.start = grid.start
      }
    }
    guard let rule = Operators.named(node.opType)?.field else {
      // An op without a rule of its own that takes a map of more than one
      // pixel to fewer than 4 axes (Reshape, Squeeze, MatMul over the
      // flattened map) has no grid left: each output sees the whole map.
      if let out = outputShapes.first, out.count < 4,
         let map = inputShapes.compactMap({ $0 }).first(where: { $0.count == 4 && $0[2] * $0[3] > 1 }) {
        return ReceptiveField.wholeMapRule(base, TracedNode(node: node, inputShapes: [map], outputShapes: outputShapes))
      }
      return base
    }
    return rule(base, TracedNode(node: node, inputShapes: inputShapes, outputShapes: outputShapes, constants: constants))
  }
}
