/// What an operator implementation sees: its node, its inputs (nil for an
/// omitted optional one) and typed attribute readers whose errors name the
/// node, the op and the attribute.
struct OpContext {
  let node: Node
  /// The node's position in the graph it runs in: the key of everything
  /// prepared for it (names may repeat in a user's file).
  var index: Int = 0
  var inputs: [NDArray?]
  let opset: Int
  let threads: Int
  /// Shape inference: the costly ops return zeros of the right shape.
  var shapesOnly = false
  /// The path the kernel took (a convolution strategy, the steps fused
  /// into it), for profiles; nil when there is only one.
  var path: String? = nil
  /// Weights prepared once per executor (packed convolution panels).
  var cache: PreparedWeights? = nil
  /// Whether input i is a constant of the graph (an initializer).
  var constant: [Bool] = []
  /// Whether input i is read by no later node and was not asked for, so
  /// the op may reuse its storage for its output.
  var consumable: [Bool] = []
  /// Whether the node's outputs leave the graph in ONNX's standard layout
  /// and no later node reads them, so an op that can write that layout
  /// directly saves the transpose the executor would otherwise make.
  var standardOutput = false

  /// Input `index`, handed over for reuse when nothing else needs it (its
  /// slot is emptied); otherwise a shared copy, as `input` gives.
  mutating func takeInput(_ index: Int) throws -> NDArray {
    let value = try input(index)
    if index < consumable.count && consumable[index] && !node.inputs[(index + 1)...].contains(node.inputs[index])
      && !node.inputs[..<index].contains(node.inputs[index])
    {
      inputs[index] = nil
    }
    return value
  }

  var op: String { node.opType }

  /// The context of `node`, an op run inside this one (a fused pool or
  /// sum, a lifted convolution) on `inputs`: the same position, opset,
  /// threads and shape inference.
  func nested(_ node: Node, inputs: [NDArray?]) -> OpContext {
    var inner = OpContext(node: node, index: index, inputs: inputs, opset: opset, threads: threads)
    inner.shapesOnly = shapesOnly
    return inner
  }

  /// Whether `node` is the graph's node at `index`, not one an op runs
  /// inside itself under the same index (`nested`), so that what it
  /// derives from its attributes may be kept for that index (`derived`).
  var isGraphNode = false

  /// What the node derives from its attributes alone (the nodes fused
  /// into it and their steps), by `make`: made once per executor for a
  /// graph's node where the executor's store is at hand, kept there as a
  /// plan without facts, else every time. Each use has a type of its own,
  /// which keys it. Rebuilt on every run (the fused node's attributes
  /// filtered out of the host's by prefix), with the plans in a hashed
  /// table, 60 convolutions of 8 channels at 4x4 took 0.68 ms a run
  /// against 0.51 now, ONNX Runtime 0.17; PP-OCR's classifier 7.01
  /// against 6.92 million instructions a run (AMD EPYC family 23 model 1).
  func derived<D: AnyObject>(_ make: (Node) throws -> D?) rethrows -> D? {
    guard isGraphNode, let cache else { return try make(node) }
    if let found: D? = cache.kept(index, facts: []) { return found }
    return cache.keep(index, facts: [], try make(node))
  }

  /// Input `index`, which must be present.
  func input(_ index: Int) throws -> NDArray {
    guard index < inputs.count, let value = inputs[index] else {
      let name = index < node.inputs.count ? node.inputs[index] : "#\(index)"
      throw NNError.missingInput(node: node.name, op: op, input: name)
    }
    return value
  }

  func optionalInput(_ index: Int) -> NDArray? {
    index < inputs.count ? inputs[index] : nil
  }

  func int(_ name: String) throws -> Int? {
    switch node.attributes[name] {
    case nil: return nil
    case .int(let value)?: return value
    case let other?: throw invalid(name, "expected an integer, got \(other)")
    }
  }

  func int(_ name: String, default value: Int) throws -> Int { try int(name) ?? value }

  func float(_ name: String, default value: Float) throws -> Float {
    switch node.attributes[name] {
    case nil: return value
    case .float(let v)?: return v
    case .int(let v)?: return Float(v)
    case let other?: throw invalid(name, "expected a float, got \(other)")
    }
  }

  func ints(_ name: String) throws -> [Int]? {
    switch node.attributes[name] {
    case nil: return nil
    case .ints(let value)?: return value
    case .int(let value)?: return [value]
    case let other?: throw invalid(name, "expected integers, got \(other)")
    }
  }

  func floats(_ name: String) throws -> [Float]? {
    switch node.attributes[name] {
    case nil: return nil
    case .floats(let value)?: return value
    case .float(let value)?: return [value]
    case let other?: throw invalid(name, "expected floats, got \(other)")
    }
  }

  func string(_ name: String, default value: String) throws -> String {
    switch node.attributes[name] {
    case nil: return value
    case .string(let v)?: return v
    case let other?: throw invalid(name, "expected a string, got \(other)")
    }
  }

  func invalid(_ attribute: String, _ reason: String) -> NNError {
    .invalidAttribute(node: node.name, op: op, attribute: attribute, reason: reason)
  }

  func unsupported(_ attribute: String, _ value: Any) -> NNError {
    .unsupportedAttribute(node: node.name, op: op, attribute: attribute, value: "\(value)")
  }

  func mismatch(_ reason: String) -> NNError {
    .shapeMismatch(node: node.name, op: op, reason: reason)
  }

  /// Normalises a possibly negative axis against `rank`.
  func axis(_ value: Int, rank: Int, attribute: String = "axis") throws -> Int {
    let a = value < 0 ? value + rank : value
    guard a >= 0 && a < rank else { throw invalid(attribute, "\(value) is outside a rank-\(rank) tensor") }
    return a
  }
}
