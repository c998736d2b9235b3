import AtrousCore

/// Why a file could not be read or written.
public enum FileError: Error, Equatable, CustomStringConvertible {
  case cannotRead(path: String, reason: String)
  case cannotWrite(path: String, reason: String)
  /// The output names a file that is also one of the command's inputs.
  case outputIsInput(path: String)
  /// The contents or name match no format Atrous handles.
  case unknownFormat(path: String, reason: String)
  /// Reading the file would take more memory than `MemoryBudget.current`
  /// (`what` says what would be allocated).
  case exceedsMemoryBudget(path: String, what: String, bytes: Int, budget: MemoryBudget)

  public var path: String {
    switch self {
    case .cannotRead(let path, _), .cannotWrite(let path, _), .outputIsInput(let path),
      .unknownFormat(let path, _), .exceedsMemoryBudget(let path, _, _, _):
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
    case .exceedsMemoryBudget(_, let what, let bytes, let budget):
      "\(what) would take \(MemoryBudget.format(bytes)), more than \(budget)"
    }
  }

  /// The reason without the kind of access ("No such file or
  /// directory", not "cannot read: No such file or directory"), for
  /// another stage's error that says the kind itself.
  public var cause: String {
    switch self {
    case .cannotRead(_, let reason), .cannotWrite(_, let reason): reason
    default: reason
    }
  }

  public var description: String { "\(path): \(reason)" }
}
