import AtrousCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Plain POSIX file access with errors that name the file.
public enum FileIO {
  /// The whole contents of a regular file.
  /// - Throws: `FileError.cannotRead`, or `.exceedsMemoryBudget` for a
  ///   file larger than `MemoryBudget.current`.
  public static func readAll(_ path: String) throws -> [UInt8] {
    let file = try openWhole(path, what: "reading it whole")
    let size = file.size
    var bytes = try [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
      initialized = try file.read(into: UnsafeMutableRawBufferPointer(buffer))
    }
    // A file that grew while we read it: take the rest too.
    while true {
      let more = try file.read(upTo: 1 << 16)
      if more.isEmpty { break }
      bytes += more
    }
    return bytes
  }

  /// A regular file opened to be read whole (in one piece or in several),
  /// once its size is within `MemoryBudget.current`.
  /// - Parameter what: what the file's size is refused for, in the error.
  /// - Throws: `FileError.cannotRead`, or `.exceedsMemoryBudget`.
  public static func openWhole(_ path: String, what: String) throws -> ReadableFile {
    let file = try ReadableFile(path: path)
    var status = stat()
    guard fstat(file.descriptor, &status) == 0 else { throw FileError.cannotRead(path: path, reason: lastError()) }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
      throw FileError.cannotRead(path: path, reason: "not a regular file")
    }
    try MemoryBudget.check(Int(status.st_size)) { FileError.exceedsMemoryBudget(path: path, what: what, bytes: $0, budget: $1) }
    return file
  }

  /// The first `count` bytes of a file (fewer if it is shorter).
  public static func readPrefix(_ path: String, count: Int) throws -> [UInt8] {
    try ReadableFile(path: path).read(upTo: count)
  }

  /// True when `path` names an existing file or folder.
  public static func exists(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0
  }

  /// Names of the entries of a folder (not "." or ".."), sorted.
  public static func listFolder(_ path: String) throws -> [String] {
    guard let directory = opendir(path) else { throw FileError.cannotRead(path: path, reason: lastError()) }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
      if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
  }

  /// Creates the folder `path` if it does not exist (its parent must).
  /// - Throws: `FileError.cannotWrite` when it cannot be made, or a file is in the way.
  public static func makeFolder(_ path: String) throws {
    if isDirectory(path) { return }
    if mkdir(path, 0o777) != 0 && !(errno == EEXIST && isDirectory(path)) {
      throw FileError.cannotWrite(path: path, reason: lastError())
    }
  }

  /// `name` inside `folder`, with one slash between them however the
  /// folder was spelled.
  public static func join(_ folder: String, _ name: String) -> String {
    folder.hasSuffix("/") ? folder + name : folder + "/" + name
  }

  /// True when `path` names an existing folder.
  public static func isDirectory(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
  }

  /// Refuses an output that is the same file as one of the inputs (same
  /// device and inode, so links and other spellings of the path count).
  /// A batch checks its outputs against one `InputFiles` instead.
  /// - Throws: `FileError.outputIsInput`.
  public static func ensure(output: String, isNotOneOf inputs: [String]) throws {
    try InputFiles(inputs).ensureNotReplaced(by: output)
  }

  static func lastError() -> String {
    String(cString: strerror(errno))
  }
}
