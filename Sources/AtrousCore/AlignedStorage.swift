#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A block of heap memory aligned to 64 bytes (one cache line, one AVX-512
/// register), owned by exactly one object and released with `free()`.
///
/// `Image` and `Tensor` keep their samples in one of these so that a decoder
/// can hand over its buffer without a copy, and so that vector loads in hot
/// loops never straddle a cache line at the start of a row.
public final class AlignedStorage: @unchecked Sendable {
  /// Alignment of every allocation, in bytes.
  public static let alignment = 64

  public let pointer: UnsafeMutableRawPointer
  /// Size in bytes (may be zero; the allocation is never empty).
  public let byteCount: Int

  /// Allocates `byteCount` bytes, zero-filled when `zeroed` is true.
  public init(byteCount: Int, zeroed: Bool = true) {
    precondition(byteCount >= 0, "negative allocation size")
    var raw: UnsafeMutableRawPointer?
    let status = posix_memalign(&raw, AlignedStorage.alignment, max(byteCount, AlignedStorage.alignment))
    guard status == 0, let raw else {
      fatalError("out of memory allocating \(byteCount) bytes")
    }
    if zeroed { memset(raw, 0, byteCount) }
    self.pointer = raw
    self.byteCount = byteCount
  }

  /// Takes ownership of memory from `malloc` or `posix_memalign`; it is
  /// released with `free()` when this object goes away.
  public init(adopting pointer: UnsafeMutableRawPointer, byteCount: Int) {
    self.pointer = pointer
    self.byteCount = byteCount
  }

  deinit { free(pointer) }

  /// A new allocation holding the same bytes.
  public func copy() -> AlignedStorage {
    let other = AlignedStorage(byteCount: byteCount, zeroed: false)
    other.pointer.copyMemory(from: pointer, byteCount: byteCount)
    return other
  }
}
