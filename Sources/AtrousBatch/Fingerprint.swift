import AtrousIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a batch's numbers depend on, hashed: the model file's bytes and
/// every setting that changes an output. Two runs with the same
/// fingerprint write the same files, so a rerun may skip what is done; a
/// different one into the same folder is refused (`ShardRun`).
///
/// Settings that do not change the numbers (threads, tiles, progress,
/// shards) are left out, so a job may be resumed with other resources.
public struct Fingerprint: Sendable {
  private var hash = SHA256()

  public init(command: String) {
    add("command", command)
  }

  /// Adds a setting by name; nil is hashed as absent, not as empty text.
  public mutating func add(_ key: String, _ value: String?) {
    // Lengths first, so ("ab", "c") and ("a", "bc") differ.
    for part in [key, value ?? "\u{0}none"] {
      hash.update(String(part.utf8.count) + ":")
      hash.update(part)
    }
  }

  /// Adds a file's contents (a model, a kernel, a pixel list), read in
  /// 1 MiB pieces.
  /// - Throws: `FileError.cannotRead`.
  public mutating func addFile(_ key: String, path: String) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw FileError.cannotRead(path: path, reason: String(cString: strerror(errno))) }
    defer { close(fd) }
    add(key, "file")
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
    defer { buffer.deallocate() }
    while true {
      let got = read(fd, buffer.baseAddress, buffer.count)
      if got < 0 && errno == EINTR { continue }
      if got < 0 { throw FileError.cannotRead(path: path, reason: String(cString: strerror(errno))) }
      if got == 0 { break }
      hash.update(UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
    }
  }

  /// "sha256:" and the first 16 hexadecimal digits of the hash.
  public var value: String { "sha256:" + hash.hex().prefix(16) }
}
