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

  /// Allocations of at least this many bytes are aligned to 2 MiB and
  /// asked for transparent huge pages, as NumPy does for its arrays: one
  /// page fault per 2 MiB instead of per 4 KiB when a large image is first
  /// written, which is a large part of a fast filter's time.
  static let hugePageThreshold = 4 << 20
  static let hugePageSize = 2 << 20

  /// Allocates `byteCount` bytes, zero-filled when `zeroed` is true.
  public init(byteCount: Int, zeroed: Bool = true) {
    precondition(byteCount >= 0, "negative allocation size")
    var raw: UnsafeMutableRawPointer?
    let huge = byteCount >= AlignedStorage.hugePageThreshold
    let alignment = huge ? AlignedStorage.hugePageSize : AlignedStorage.alignment
    let status = posix_memalign(&raw, alignment, max(byteCount, AlignedStorage.alignment))
    guard status == 0, let raw else {
      fatalError("out of memory allocating \(byteCount) bytes")
    }
    #if os(Linux)
    if huge {
      let length = byteCount / AlignedStorage.hugePageSize * AlignedStorage.hugePageSize
      _ = madvise(raw, length, 14)  // MADV_HUGEPAGE; a refusal only costs speed
    }
    #endif
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
