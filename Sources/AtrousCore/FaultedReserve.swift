import Synchronization
import _CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Address space that `LargeBlockPool` cuts new blocks from, first to last,
/// while a thread of its own faults it in ahead of them.
///
/// A fresh process's first run of a model writes every activation into
/// memory it has never touched, and the kernel clears each page as it is
/// first written: about 30 MB for VGG16 blocks 1-2 on a 224x224 image, a
/// tenth of the process's CPU time, on the threads the run needs. Before
/// the run, while one thread parses the command line, loads the model and
/// decodes the image, the other cores are idle: there the reserve is
/// faulted in, so that the run's first blocks find their pages present.
/// The thread stops when told to (a model's run starts) or at the end.
final class FaultedReserve: @unchecked Sendable {
  /// 2 MiB aligned, `size` bytes, asked for transparent huge pages.
  let base: UnsafeMutableRawPointer
  let size: Int
  /// Bytes cut off so far, from `base`; the pool's lock guards it.
  private var used = 0
  /// Bytes blocks are cut from and the thread faults in: `size`, or less
  /// after `limit(to:)`.
  private let end: Atomic<Int>
  private let stopped = Atomic<Bool>(false)

  /// Maps `bytes` (rounded up to 2 MiB); nil when the system refuses.
  init?(bytes: Int) {
    let huge = AlignedStorage.hugePageSize
    let size = (bytes + huge - 1) / huge * huge
    guard size > 0 else { return nil }
    // A huge page's worth more, so that the reserve can start on a huge page boundary.
    let mapped = mmap(nil, size + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    guard let mapped, mapped != MAP_FAILED else { return nil }
    let start = (Int(bitPattern: mapped) + huge - 1) / huge * huge, lead = start - Int(bitPattern: mapped)
    if lead > 0 { munmap(mapped, lead) }
    if lead < huge { munmap(UnsafeMutableRawPointer(bitPattern: start + size), huge - lead) }
    base = UnsafeMutableRawPointer(bitPattern: start)!
    self.size = size
    end = Atomic(size)
    AlignedStorage.adviseHugePages(UnsafeMutableRawBufferPointer(start: base, count: size))
  }

  deinit { munmap(base, size) }

  /// Whether `pointer` was cut from here.
  func holds(_ pointer: UnsafeMutableRawPointer) -> Bool {
    let offset = pointer - base
    return offset >= 0 && offset < size
  }

  /// The next `capacity` bytes, aligned as `AlignedStorage` aligns a block
  /// of that size (`blockUnit`), or nil when the rest is too small. The
  /// caller holds the pool's lock.
  func cut(_ capacity: Int) -> UnsafeMutableRawPointer? {
    let unit = AlignedStorage.blockUnit(capacity)
    let offset = (used + unit - 1) / unit * unit
    guard offset + capacity <= end.load(ordering: .relaxed) else { return nil }
    used = offset + capacity
    return base + offset
  }

  /// Gives a block cut from here (or the pages past a point) back to the
  /// system. Its pages go, the addresses stay mapped: the faulting thread
  /// may still touch them (and would only fault them in again, where
  /// unmapped they would crash it).
  func release(_ pointer: UnsafeMutableRawPointer, capacity: Int) {
    _ = madvise(pointer, capacity, MADV_DONTNEED)
  }

  /// Starts the thread that faults the reserve in, 2 MiB at a time from
  /// the start (where blocks are cut first), until `stop`, off the
  /// caller's CPU (`DetachedThread`).
  func startFaulting() {
    DetachedThread.start(awayFrom: atr_current_cpu()) { [self] in fault() }
  }

  /// Keeps the reserve to its first `bytes` (rounded up to 2 MiB; none
  /// when 0), or to the blocks already cut if they reach further: blocks
  /// are no longer cut past it, the thread faults no more past it, and
  /// the pages it faulted there go back (but for the 2 MiB it may be
  /// faulting at the time, which `trim` gives back). The caller holds the
  /// pool's lock.
  func limit(to bytes: Int) {
    let huge = AlignedStorage.hugePageSize
    let limit = max(min(size, (bytes + huge - 1) / huge * huge), (used + huge - 1) / huge * huge)
    guard limit < end.load(ordering: .relaxed) else { return }
    end.store(limit, ordering: .relaxed)
    release(base + limit, capacity: size - limit)
  }

  /// Stops the faulting thread before its next 2 MiB.
  func stop() { stopped.store(true, ordering: .relaxed) }

  /// Gives back the pages past the last block cut so far, once: what was
  /// faulted in ahead and a first run did not take would otherwise stay
  /// with the process (a small model's run cuts a few megabytes of 64; a
  /// large image's run takes blocks too large for the rest). Blocks cut
  /// later fault their pages in as fresh memory does. The caller holds
  /// the pool's lock.
  func trim() {
    guard !trimmed else { return }
    trimmed = true
    let start = (used + 4095) / 4096 * 4096
    if start < size { release(base + start, capacity: size - start) }
  }
  private var trimmed = false

  /// Faults the reserve in on the calling thread, until `stop`.
  func fault() {
    let chunk = AlignedStorage.hugePageSize
    for offset in stride(from: 0, to: size, by: chunk) {
      guard !stopped.load(ordering: .relaxed), offset < end.load(ordering: .relaxed) else { return }
      atr_touch_pages(base + offset, chunk)
    }
  }
}
