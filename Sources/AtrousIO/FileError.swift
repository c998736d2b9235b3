/// Why a file could not be read or written.
public enum FileError: Error, Equatable, CustomStringConvertible {
  case cannotRead(path: String, reason: String)
  case cannotWrite(path: String, reason: String)
  /// The output names a file that is also one of the command's inputs.
  case outputIsInput(path: String)
  /// The contents or name match no format Atrous handles.
  case unknownFormat(path: String, reason: String)

  public var path: String {
    switch self {
    case .cannotRead(let path, _), .cannotWrite(let path, _), .outputIsInput(let path),
      .unknownFormat(let path, _):
      path
    }
  }

  /// The reason alone, without the path.
  public var reason: String {
    switch self {
    case .cannotRead(_, let reason): "cannot read: \(reason)"
    case .cannotWrite(_, let reason): "cannot write: \(reason)"
    case .outputIsInput: "refusing to write over an input file"
    case .unknownFormat(_, let reason): reason
    }
  }

  public var description: String { "\(path): \(reason)" }
}
