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
  /// - Throws: `FileError.cannotRead`.
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

  /// True when `path` names an existing file or folder.
  public static func exists(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0
  }

  /// True when `path` names an existing folder.
  public static func isDirectory(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
  }

  /// Refuses an output that is the same file as one of the inputs (same
  /// device and inode, so links and other spellings of the path count).
  /// - Throws: `FileError.outputIsInput`.
  public static func ensure(output: String, isNotOneOf inputs: [String]) throws {
    var target = stat()
    guard stat(output, &target) == 0 else { return }
    for input in inputs {
      var source = stat()
      if stat(input, &source) == 0, source.st_dev == target.st_dev, source.st_ino == target.st_ino {
        throw FileError.outputIsInput(path: output)
      }
    }
  }

  static func lastError() -> String {
    String(cString: strerror(errno))
  }
}
