import AtrousCore

/// Why a gradient cannot be taken through a graph.
public enum GradientError: Error, Equatable, CustomStringConvertible {
  /// A node between the input and the layer whose gradient is not written.
  case unsupported(op: String, node: String)
  /// An attribute value the gradient does not follow.
  case unsupportedAttribute(node: String, attribute: String, value: String)
  /// No node makes a value of that name.
  case unknownLayer(String)
  /// The graph has no image input, or several.
  case inputCount(Int)
  /// The layer is not a 4-D (1, C, H, W) map.
  case notAMap(layer: String, shape: [Int])
  /// The forward values and gradients would not fit the memory budget.
  case exceedsMemoryBudget(bytes: Int, budget: String)

  public var description: String {
    switch self {
    case .unsupported(let op, let node):
      "node '\(node)' is a \(op), whose gradient is not supported (supported: "
        + InputGradient.supportedOps.sorted().joined(separator: ", ") + ")"
    case .unsupportedAttribute(let node, let attribute, let value):
      "node '\(node)': \(attribute) \(value) is not supported for gradients"
    case .unknownLayer(let name): "no layer named '\(name)'"
    case .inputCount(let count): "the model has \(count) inputs; gradients need exactly one image input"
    case .notAMap(let layer, let shape): "layer '\(layer)' has shape \(shape), not a feature map (1, C, H, W)"
    case .exceedsMemoryBudget(let bytes, let budget):
      "the layers' values and gradients would take \(bytes >> 20) MiB, more than \(budget); a smaller input fits"
    }
  }
}

/// The gradient of one unit of a layer, summed over the layer's channels,
/// with respect to the graph's input: reverse mode through the nodes
/// between them, each op's rule in `GradientRules`.
///
/// The forward values come from the executor (every value the rules read
/// is kept); the backward pass runs in plain float32 loops in standard
/// (N, C, H, W) layout, convolutions split by input channel across threads.
public final class InputGradient: @unchecked Sendable {
  public let layer: String
  /// The graph input the image feeds.
  public let inputName: String
  let executor: Executor
  let initializers: [String: NDArray]
  /// The nodes from the input to the layer, in an order that runs them.
  let path: [Node]
  /// Every value the rules read, forward.
  let kept: [String]
  /// The values that depend on the input.
  let variable: Set<String>
  let threads: Int

  /// Ops whose gradient `GradientRules` writes.
  public static let supportedOps: Set<String> = [
    "Conv", "ConvTranspose", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Identity", "Dropout", "Neg", "Sqrt",
    "Add", "Sub", "Mul", "Div", "BatchNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "Concat", "Pad", "Resize", "HardSigmoid", "Reshape", "Flatten", "Squeeze", "Unsqueeze",
  ]

  /// - Throws: `GradientError` for a layer that is unknown or a node on the
  ///   way whose gradient is not supported; the executor's errors.
  public convenience init(graph: Graph, layer: String, threads: Int = Parallel.coreCount) throws {
    if let problem = Self.problem(graph: graph, layer: layer) { throw problem }
    try self.init(executor: Executor(graph: graph, threads: threads), layer: layer, threads: threads)
  }

  /// The gradient through an executor already prepared (its weights
  /// packed once for every layer measured).
  /// - Parameter keep: the values the forward pass returns, when several
  ///   layers share the executor: `keptValues(graph:layers:)` of them all,
  ///   so that every run asks for the same values and the executor
  ///   prepares its weights once (each distinct set is a variant of the
  ///   graph). Nil: this layer's own.
  public init(executor: Executor, layer: String, keep: [String]? = nil, threads: Int = Parallel.coreCount) throws {
    let graph = executor.graph
    let (input, path, variable) = try Self.plan(graph: graph, layer: layer)
    self.executor = executor
    inputName = input
    self.layer = layer
    self.threads = threads
    self.path = path
    self.variable = variable
    initializers = graph.initializers
    kept = keep ?? Self.keptValues(graph: graph, path: path, layers: [layer], input: input)
  }

  /// Refuses, before anything is allocated, a graph whose values at
  /// `inputShape` and their gradients (every layer's output, twice, and
  /// `inputs` inputs) would not fit the memory budget.
  /// - Throws: `GradientError.exceedsMemoryBudget`.
  public static func checkMemory(_ summary: NetworkSummary, inputShape: [Int], inputs: Int) throws {
    var elements = inputShape.reduce(1, *).multipliedReportingOverflow(by: inputs + 2).partialValue
    for layer in summary.layers { elements = elements.addingReportingOverflow(2 * layer.outputShape.reduce(1, *)).partialValue }
    try MemoryBudget.check(elements, of: 4) { GradientError.exceedsMemoryBudget(bytes: $0, budget: $1.description) }
  }

  /// The forward values the gradients of `layers` read.
  /// - Throws: `GradientError` for a layer whose gradient cannot be taken.
  public static func keptValues(graph: Graph, layers: [String]) throws -> [String] {
    var nodes: [Node] = [], input = ""
    for layer in layers {
      let found = try plan(graph: graph, layer: layer)
      nodes += found.path
      input = found.input
    }
    return keptValues(graph: graph, path: nodes, layers: layers, input: input)
  }

  static func keptValues(graph: Graph, path: [Node], layers: [String], input: String) -> [String] {
    var names = Set(layers)
    for node in path {
      for value in node.inputs + node.outputs where !value.isEmpty && graph.initializers[value] == nil { names.insert(value) }
    }
    names.remove(input)
    return names.sorted()
  }

  /// Whether the gradient of `layer` can be taken: nil, or why not.
  public static func problem(graph: Graph, layer: String) -> GradientError? {
    do {
      _ = try plan(graph: graph, layer: layer)
      return nil
    } catch let error as GradientError {
      return error
    } catch {
      return .unknownLayer(layer)
    }
  }

  /// The image input, the nodes from it to `layer` in an order that runs
  /// them, and the values that depend on it.
  static func plan(graph: Graph, layer: String) throws -> (input: String, path: [Node], variable: Set<String>) {
    let inputs = graph.inputs.map(\.name).filter { graph.initializers[$0] == nil }
    guard inputs.count == 1 else { throw GradientError.inputCount(inputs.count) }
    let inputName = inputs[0]
    var producer: [String: Node] = [:]
    for node in graph.nodes { for output in node.outputs where !output.isEmpty { producer[output] = node } }
    guard layer == inputName || producer[layer] != nil else { throw GradientError.unknownLayer(layer) }
    // The values that depend on the input; the others (initializers,
    // Constant nodes and what is computed from them only) are constants.
    var variable: Set<String> = [inputName]
    var grew = true
    while grew {
      grew = false
      for node in graph.nodes where node.inputs.contains(where: variable.contains) {
        for output in node.outputs where !output.isEmpty && variable.insert(output).inserted { grew = true }
      }
    }
    // Post-order walk from the layer: every node after the nodes it reads.
    var order: [Node] = [], visited = Set<String>()
    func visit(_ value: String) {
      guard variable.contains(value), let node = producer[value],
            visited.insert(node.name + "\u{0}" + node.outputs[0]).inserted else { return }
      for input in node.inputs where !input.isEmpty { visit(input) }
      order.append(node)
    }
    visit(layer)
    for node in order where !supportedOps.contains(node.opType) {
      throw GradientError.unsupported(op: node.opType, node: node.name)
    }
    return (inputName, order, variable)
  }

  /// The gradient of the sum over channels of the layer's unit at `unit`
  /// (default: the centre, ((h - 1) / 2, (w - 1) / 2)) with respect to
  /// `input` ((1, C, H, W)), as (C, H, W); and the layer's shape and the unit.
  /// - Throws: `GradientError.notAMap`, the executor's errors.
  public func gradient(at input: NDArray, unit: (row: Int, column: Int)? = nil) throws
    -> (gradient: Tensor, layerShape: [Int], unit: (row: Int, column: Int))
  {
    var values: [String: GradientRules.Value] = [:]
    let plain = input.standard()
    values[inputName] = GradientRules.Value(shape: plain.shape, values: plain.floatValues())
    if !kept.isEmpty {
      let results = try executor.run([inputName: input], outputs: kept)
      for (name, value) in results { values[name] = GradientRules.Value(shape: value.shape, values: value.floatValues()) }
    }
    let target = values[layer]!
    guard target.shape.count == 4, target.shape[0] == 1 else { throw GradientError.notAMap(layer: layer, shape: target.shape) }
    let (c, h, w) = (target.shape[1], target.shape[2], target.shape[3])
    let chosen = unit ?? ((h - 1) / 2, (w - 1) / 2)
    var seed = [Float](repeating: 0, count: c * h * w)
    for k in 0..<c { seed[(k * h + chosen.row) * w + chosen.column] = 1 }
    var gradients: [String: [Float]] = [layer: seed]
    let rules = GradientRules(values: values, initializers: initializers, variable: variable, threads: threads)
    for node in path.reversed() {
      guard let gy = gradients[node.outputs[0]] else { continue }
      let inputs = try rules.inputGradients(node, outputGradient: gy)
      for (index, g) in inputs {
        let name = node.inputs[index]
        guard !name.isEmpty, variable.contains(name) else { continue }
        if var sum = gradients[name] {
          for i in sum.indices { sum[i] += g[i] }
          gradients[name] = sum
        } else {
          gradients[name] = g
        }
      }
      if node.outputs[0] != layer { gradients[node.outputs[0]] = nil }
    }
    let shape = Array(plain.shape.dropFirst())
    let result = gradients[inputName] ?? [Float](repeating: 0, count: shape.reduce(1, *))
    return (Tensor(shape: shape, values: result), target.shape, chosen)
  }
}
