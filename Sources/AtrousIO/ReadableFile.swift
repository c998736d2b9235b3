#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file opened for reading in pieces, with errors that name it.
public final class ReadableFile {
  public let path: String
  /// The open descriptor, for reads the methods here do not cover.
  let descriptor: Int32

  public init(path: String) throws {
    self.path = path
    descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw FileError.cannotRead(path: path, reason: FileIO.lastError()) }
    var status = stat()
    if fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR {
      close(descriptor)
      throw FileError.cannotRead(path: path, reason: "is a directory")
    }
  }

  deinit { close(descriptor) }

  /// The file's size in bytes now (a regular file's; 0 if unknown).
  public var size: Int {
    var status = stat()
    return fstat(descriptor, &status) == 0 ? Int(status.st_size) : 0
  }

  func seek(to offset: Int) throws {
    guard lseek(descriptor, off_t(offset), SEEK_SET) >= 0 else { throw FileError.cannotRead(path: path, reason: FileIO.lastError()) }
  }

  /// Fills `buffer` as far as the file allows; returns the bytes read.
  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    try fill(buffer) { Glibc.read(descriptor, $0, $1) }
  }

  /// Up to `count` bytes (fewer at the end of the file).
  public func read(upTo count: Int) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let got = try bytes.withUnsafeMutableBytes { try read(into: $0) }
    bytes.removeLast(count - got)
    return bytes
  }

  /// Fills `buffer` from byte `offset` of the file on, as far as the file
  /// allows, without moving the position `read(into:)` reads from;
  /// returns the bytes read.
  public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws -> Int {
    try fill(buffer) { target, count in pread(descriptor, target, count, off_t(offset + (target - buffer.baseAddress!))) }
  }

  /// Calls `read(target, count)` (a read or pread of the rest of `buffer`)
  /// until `buffer` is full or the file ends; returns the bytes read.
  private func fill(_ buffer: UnsafeMutableRawBufferPointer, _ read: (UnsafeMutableRawPointer, Int) -> Int) throws -> Int {
    var total = 0
    while total < buffer.count {
      let got = read(buffer.baseAddress! + total, buffer.count - total)
      if got < 0 && errno == EINTR { continue }
      if got < 0 { throw FileError.cannotRead(path: path, reason: FileIO.lastError()) }
      if got == 0 { break }
      total += got
    }
    return total
  }
}
