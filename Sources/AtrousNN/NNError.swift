/// Why a network could not be built or run. Cases name the node, its op
/// and what was wrong with it.
public enum NNError: Error, Equatable, CustomStringConvertible {
  case unsupportedOp(node: String, op: String)
  case unsupportedAttribute(node: String, op: String, attribute: String, value: String)
  case invalidAttribute(node: String, op: String, attribute: String, reason: String)
  case missingInput(node: String, op: String, input: String)
  /// Shapes that the op cannot combine.
  case shapeMismatch(node: String, op: String, reason: String)
  /// A graph input the caller did not supply, or supplied with the wrong rank.
  case badGraphInput(name: String, reason: String)
  /// A node name that another node of the graph has too.
  case duplicateNode(node: String, op: String)
  /// A value a node makes that the graph already has (ONNX values are
  /// assigned once).
  case duplicateValue(node: String, op: String, value: String)
  /// A value of an element type the op does not take.
  case unsupportedType(node: String, op: String, input: String, type: String)
  /// A node set to train (BatchNormalization's running statistics,
  /// Dropout's random mask): inference is all that runs.
  case trainingMode(node: String, op: String)
  /// An output name no node produces.
  case unknownValue(name: String)

  public var description: String {
    switch self {
    case .unsupportedOp(let node, let op): "node '\(node)' (\(op)): operator \(op) is not supported"
    case .unsupportedAttribute(let node, let op, let attribute, let value):
      "node '\(node)' (\(op)): attribute \(attribute)=\(value) is not supported"
    case .invalidAttribute(let node, let op, let attribute, let reason):
      "node '\(node)' (\(op)): attribute \(attribute): \(reason)"
    case .missingInput(let node, let op, let input):
      "node '\(node)' (\(op)): input '\(input)' has no value (no graph input, initializer or earlier node makes it)"
    case .shapeMismatch(let node, let op, let reason): "node '\(node)' (\(op)): \(reason)"
    case .duplicateNode(let node, let op): "node '\(node)' (\(op)): another node has the same name"
    case .duplicateValue(let node, let op, let value): "node '\(node)' (\(op)): value '\(value)' is already defined"
    case .unsupportedType(let node, let op, let input, let type):
      "node '\(node)' (\(op)): input '\(input)' of type \(type) is not supported"
    case .trainingMode(let node, let op): "node '\(node)' (\(op)): training mode is not supported, only inference"
    case .badGraphInput(let name, let reason): "graph input '\(name)': \(reason)"
    case .unknownValue(let name): "no value named '\(name)' in the graph"
    }
  }
}
