import AtrousIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why the inputs of a batch could not be listed.
public enum InputError: Error, Equatable, CustomStringConvertible {
  /// A folder holds no file of the kinds the command reads.
  case emptyFolder(path: String, kinds: String)
  /// A glob pattern matched no file of those kinds.
  case noMatch(pattern: String)
  /// A file list or folder could not be read.
  case cannotRead(path: String, reason: String)

  public var path: String {
    switch self {
    case .emptyFolder(let path, _), .noMatch(let path), .cannotRead(let path, _): path
    }
  }

  public var reason: String {
    switch self {
    case .emptyFolder(_, let kinds): "no \(kinds) files in the folder"
    case .noMatch: "the pattern matches no file"
    case .cannotRead(_, let reason): "cannot read: \(reason)"
    }
  }

  public var description: String { "\(path): \(reason)" }
}

/// The files of a batch, in one order whatever the file system returns:
/// sorted by path, byte by byte (as `LC_ALL=C sort`), each once. Shards
/// (`Shard`) split this order, so every task of a job must see the same.
public struct InputList: Sendable, Equatable {
  /// Paths as given or as found under the folders named, sorted.
  public var files: [String]
  /// Things worth saying that are no error (subfolders not read).
  public var warnings: [String]

  /// Lists the files of `arguments` and of `fileList`'s lines.
  ///
  /// - A folder gives the files directly inside it whose name `accepts`
  ///   (with `recursive`, those of its subfolders too), hidden ones left
  ///   out; a folder with none is an error.
  /// - An argument that names no file and holds `*`, `?` or `[` is a
  ///   pattern (`photos/*.png`, for lists too long for a shell to pass);
  ///   files it matches that `accepts` refuses are left out.
  /// - Any other argument is a file, read (or reported unreadable) by the
  ///   job that takes it.
  /// - Parameter fileList: lines of paths (`readList`), each taken as it
  ///   is (no folder or pattern; a line's final CR dropped); empty lines
  ///   are skipped.
  public static func expand(_ arguments: [String], fileList: [String] = [], recursive: Bool = false,
                            kindsText: String, accepts: (String) -> Bool) throws -> InputList {
    var files: [String] = [], warnings: [String] = []
    for argument in arguments {
      if FileIO.isDirectory(argument) {
        let found = try walk(argument, recursive: recursive, accepts: accepts, warnings: &warnings)
        guard !found.isEmpty else { throw InputError.emptyFolder(path: argument, kinds: kindsText) }
        files += found
      } else if !FileIO.exists(argument), argument.contains(where: { "*?[".contains($0) }) {
        let matched = glob(argument).filter { !FileIO.isDirectory($0) && accepts($0) }
        guard !matched.isEmpty else { throw InputError.noMatch(pattern: argument) }
        files += matched
      } else {
        files.append(argument)
      }
    }
    for line in fileList {
      let path = line.hasSuffix("\r") ? String(line.dropLast()) : line
      if !path.isEmpty { files.append(path) }
    }
    return InputList(files: sortedUnique(files), warnings: warnings)
  }

  /// The lines of a file list: a file, or standard input for `-`.
  public static func readList(_ path: String) throws -> [String] {
    let bytes: [UInt8]
    if path == "-" {
      var all: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 65536)
      while true {
        let got = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
        if got < 0 && errno == EINTR { continue }
        if got < 0 { throw InputError.cannotRead(path: "-", reason: String(cString: strerror(errno))) }
        if got == 0 { break }
        all += chunk[0..<got]
      }
      bytes = all
    } else {
      do {
        bytes = try FileIO.readAll(path)
      } catch let error as FileError {
        throw InputError.cannotRead(path: path, reason: error.cause)
      }
    }
    // Split on bytes: as characters, "\r\n" is one, not a "\n".
    return bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
  }

  /// Sorted by UTF-8 bytes, duplicates dropped.
  static func sortedUnique(_ paths: [String]) -> [String] {
    var seen = Set<String>()
    return paths.filter { seen.insert($0).inserted }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
  }

  private static func walk(_ folder: String, recursive: Bool, accepts: (String) -> Bool,
                           warnings: inout [String]) throws -> [String] {
    let names: [String]
    do {
      names = try FileIO.listFolder(folder).filter { !$0.hasPrefix(".") }
    } catch let error as FileError {
      throw InputError.cannotRead(path: folder, reason: error.cause)
    }
    var files: [String] = []
    for name in names {
      let path = FileIO.join(folder, name)
      if FileIO.isDirectory(path) {
        if recursive {
          files += try walk(path, recursive: true, accepts: accepts, warnings: &warnings)
        } else {
          warnings.append("warning: \(path): a subfolder; only files directly in \(folder) are read (--recursive reads subfolders)")
        }
      } else if accepts(name) {
        files.append(path)
      }
    }
    return files
  }

  private static func glob(_ pattern: String) -> [String] {
    var result = glob_t()
    defer { globfree(&result) }
    guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
    return (0..<Int(result.gl_pathc)).compactMap { result.gl_pathv[$0].map { String(cString: $0) } }
  }
}
