import ArgumentParser
import AtrousIO

/// A folder the user names for outputs (`--out-dir`, or `-o` where the
/// output is a folder): made when missing, as `mkdir` makes one, so its
/// parent must exist.
enum OutputFolder {
  /// For `validate()`: a file in the way, or a missing parent, is a usage
  /// error naming `option`.
  static func check(_ path: String, option: String) throws {
    if FileIO.isDirectory(path) { return }
    if FileIO.exists(path) { throw ValidationError("\(option) \(path): a file of that name is in the way of the folder") }
    let parent = parent(of: path)
    guard FileIO.isDirectory(parent) else {
      throw ValidationError("\(option) \(path): the folder it would go in, \(parent), does not exist")
    }
  }

  /// Makes the folder if it is missing; a failure ends the command with
  /// status 1.
  static func make(_ path: String) throws {
    try Reporting.orExit(file: path) { try FileIO.makeFolder(path) }
  }

  /// The folder `path` is in: "." for a bare name, "/" at the top.
  static func parent(of path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return "." }
    return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
  }

  /// `name` inside `folder` (`FileIO.join`).
  static func join(_ folder: String, _ name: String) -> String { FileIO.join(folder, name) }
}
