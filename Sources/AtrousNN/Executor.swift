import AtrousCore

/// Runs a graph: nodes in order, each value freed as soon as no later node
/// needs it (unless it was asked for).
public final class Executor: Sendable {
  public let graph: Graph
  /// Threads an op may use.
  public let threads: Int

  /// - Throws: `NNError.unsupportedOp` naming the first node whose op is
  ///   not implemented.
  public init(graph: Graph, threads: Int = Parallel.coreCount) throws {
    for node in graph.nodes where Operators.table[node.opType] == nil {
      throw NNError.unsupportedOp(node: node.name, op: node.opType)
    }
    self.graph = graph
    self.threads = threads
  }

  /// The graph inputs that are not constants.
  public var inputNames: [String] {
    graph.inputs.map(\.name).filter { graph.initializers[$0] == nil }
  }

  /// Runs the graph.
  /// - Parameters:
  ///   - inputs: a value for every non-constant graph input, standard layout.
  ///   - outputs: names to return (default: the graph outputs); any
  ///     intermediate value may be named.
  /// - Returns: the requested values in standard (ONNX) layout.
  public func run(_ inputs: [String: NDArray], outputs requested: [String]? = nil) throws -> [String: NDArray] {
    let wanted = requested ?? graph.outputs
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
      values[input.name] = value
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
      let context = OpContext(node: node, inputs: args, opset: graph.opset, threads: threads)
      let results = try Operators.table[node.opType]!(context)
      for (name, value) in zip(node.outputs, results) where !name.isEmpty { values[name] = value }
      for name in node.inputs where !name.isEmpty && lastUse[name] == index && !keep.contains(name)
        && graph.initializers[name] == nil
      {
        values[name] = nil
      }
    }
    var result: [String: NDArray] = [:]
    for name in wanted {
      guard let value = values[name] else { throw NNError.unknownValue(name: name) }
      result[name] = value.standard()
    }
    return result
  }
}
