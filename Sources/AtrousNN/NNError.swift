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
  /// An output name no node produces.
  case unknownValue(name: String)

  public var description: String {
    switch self {
    case .unsupportedOp(let node, let op): "node '\(node)': operator \(op) is not supported"
    case .unsupportedAttribute(let node, let op, let attribute, let value):
      "node '\(node)' (\(op)): attribute \(attribute)=\(value) is not supported"
    case .invalidAttribute(let node, let op, let attribute, let reason):
      "node '\(node)' (\(op)): attribute \(attribute): \(reason)"
    case .missingInput(let node, let op, let input): "node '\(node)' (\(op)): input '\(input)' has no value"
    case .shapeMismatch(let node, let op, let reason): "node '\(node)' (\(op)): \(reason)"
    case .badGraphInput(let name, let reason): "graph input '\(name)': \(reason)"
    case .unknownValue(let name): "no value named '\(name)' in the graph"
    }
  }
}
