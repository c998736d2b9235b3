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
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileError.cannotRead(path: path, reason: lastError()) }
    defer { close(fd) }
    var status = stat()
    guard fstat(fd, &status) == 0 else { throw FileError.cannotRead(path: path, reason: lastError()) }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
      let kind = (status.st_mode & S_IFMT) == S_IFDIR ? "is a directory" : "not a regular file"
      throw FileError.cannotRead(path: path, reason: kind)
    }
    let size = Int(status.st_size)
    try MemoryBudget.check(size) { FileError.exceedsMemoryBudget(path: path, what: "reading it whole", bytes: $0, budget: $1) }
    var bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
      initialized = 0
      while initialized < size {
        let got = read(fd, buffer.baseAddress! + initialized, size - initialized)
        if got < 0 && errno == EINTR { continue }
        if got <= 0 { break }
        initialized += got
      }
    }
    // A file that grew while we read it: take the rest too.
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if got < 0 && errno == EINTR { continue }
      if got < 0 { throw FileError.cannotRead(path: path, reason: lastError()) }
      if got == 0 { break }
      bytes.append(contentsOf: chunk[0..<got])
    }
    return bytes
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

/// A file opened for reading in pieces, with errors that name it.
final class ReadableFile {
  let path: String
  private let fd: Int32

  init(path: String) throws {
    self.path = path
    fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileError.cannotRead(path: path, reason: FileIO.lastError()) }
    var status = stat()
    if fstat(fd, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR {
      close(fd)
      throw FileError.cannotRead(path: path, reason: "is a directory")
    }
  }

  deinit { close(fd) }

  /// The file's size in bytes now (a regular file's; 0 if unknown).
  var size: Int {
    var status = stat()
    return fstat(fd, &status) == 0 ? Int(status.st_size) : 0
  }

  func seek(to offset: Int) throws {
    guard lseek(fd, off_t(offset), SEEK_SET) >= 0 else { throw FileError.cannotRead(path: path, reason: FileIO.lastError()) }
  }

  /// Fills `buffer` as far as the file allows; returns the bytes read.
  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    var total = 0
    while total < buffer.count {
      let got = Glibc.read(fd, buffer.baseAddress! + total, buffer.count - total)
      if got < 0 && errno == EINTR { continue }
      if got < 0 { throw FileError.cannotRead(path: path, reason: FileIO.lastError()) }
      if got == 0 { break }
      total += got
    }
    return total
  }

  /// Up to `count` bytes (fewer at the end of the file).
  func read(upTo count: Int) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let got = try bytes.withUnsafeMutableBytes { try read(into: $0) }
    bytes.removeLast(count - got)
    return bytes
  }
}
