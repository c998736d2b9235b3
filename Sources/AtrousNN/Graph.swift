/// An attribute of a node, as ONNX defines them.
public enum Attribute: Sendable {
  case int(Int)
  case float(Float)
  case string(String)
  case ints([Int])
  case floats([Float])
  case strings([String])
  case tensor(NDArray)
}

/// One operation of a graph.
public struct Node: Sendable {
  public var name: String
  public var opType: String
  /// Value names; an empty name is an omitted optional input.
  public var inputs: [String]
  public var outputs: [String]
  public var attributes: [String: Attribute]

  public init(name: String, opType: String, inputs: [String], outputs: [String], attributes: [String: Attribute] = [:]) {
    self.name = name
    self.opType = opType
    self.inputs = inputs
    self.outputs = outputs
    self.attributes = attributes
  }
}

extension Node {
  /// Takes another node's attributes under `prefix`, as a node that runs
  /// that node fused into it keeps them (`PooledConvolution`,
  /// `ResidualConvolution`).
  mutating func carry(_ attributes: [String: Attribute], under prefix: String) {
    for (name, value) in attributes { self.attributes[prefix + name] = value }
  }

  /// The attributes `carry` put under `prefix`, with their own names.
  func carried(under prefix: String) -> [String: Attribute] {
    Dictionary(uniqueKeysWithValues: attributes.filter { $0.key.hasPrefix(prefix) }.map {
      (String($0.key.dropFirst(prefix.count)), $0.value)
    })
  }
}

/// A computation graph: nodes in topological order, constant values
/// (weights), and the named inputs and outputs.
public struct Graph: Sendable {
  public struct Input: Sendable {
    public var name: String
    /// Declared shape; nil entries are symbolic (batch size, say).
    public var shape: [Int?]
    /// Declared element type, nil when the model does not say.
    public var dtype: DType?

    public init(name: String, shape: [Int?], dtype: DType? = nil) {
      self.name = name
      self.shape = shape
      self.dtype = dtype
    }
  }

  public var nodes: [Node]
  public var initializers: [String: NDArray]
  public var inputs: [Input]
  public var outputs: [String]
  /// Version of the default ONNX operator set.
  public var opset: Int

  public init(nodes: [Node], initializers: [String: NDArray], inputs: [Input], outputs: [String], opset: Int) {
    self.nodes = nodes
    self.initializers = initializers
    self.inputs = inputs
    self.outputs = outputs
    self.opset = opset
  }
}
