import Synchronization
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
  /// Bytes actually held, when the block can go back to `LargeBlockPool`.
  private let pooledCapacity: Int?
  /// Bytes from the start of the block to `pointer` (see `apartFrom`).
  private let offset: Int
  /// The addresses a load and an earlier store are compared by, in bytes:
  /// 4 KiB, their low 12 bits, on x86-64 CPUs.
  public static let aliasSpan = 4096
  /// Whether the block came from `LargeBlockPool` (and goes back to it).
  var isPooled: Bool { pooledCapacity != nil }

  /// Allocations of at least this many bytes are aligned to 2 MiB and
  /// asked for transparent huge pages, as NumPy does for its arrays: one
  /// page fault per 2 MiB instead of per 4 KiB when a large image is first
  /// written, which is a large part of a fast filter's time.
  static let hugePageThreshold = 4 << 20
  static let hugePageSize = 2 << 20
  /// Allocations of at least this many bytes go through `LargeBlockPool`:
  /// scratch a kernel takes per call (a Winograd block's transformed input
  /// and products, 64 to 250 KB with 64 channels) is otherwise mapped
  /// afresh by `malloc` and faulted in again, page by page, on every call
  /// (VGG16 blocks 1-2, fresh process: about 970 faults of 4 KiB fewer
  /// with this at 64 KiB than at 256).
  static let poolThreshold = 64 << 10

  /// What a pooled block of `bytes` is rounded up to, and aligned to:
  /// huge pages from `hugePageThreshold` up, else 64 KiB.
  static func blockUnit(_ bytes: Int) -> Int { bytes >= hugePageThreshold ? hugePageSize : 64 << 10 }

  /// Allocates `byteCount` bytes, zero-filled when `zeroed` is true.
  ///
  /// With `apartFrom`, the bytes start half of `aliasSpan` away from that
  /// address in the low bits a CPU compares (still 64-byte aligned): an
  /// output that a kernel writes while it reads the input at the same
  /// offsets, the input's rows and the output's a multiple of 4 KiB apart
  /// (two large blocks, each 2 MiB aligned), then has no store whose low 12
  /// address bits equal those of a load just behind it. Such a load waits
  /// on the store as if it read the stored bytes: the 3x3 Sobel read in
  /// place took 15.9 ms for 4096 x 4096 with the output so placed against
  /// 11.1 apart (AMD EPYC family 23 model 1).
  public init(byteCount: Int, zeroed: Bool = true, apartFrom other: UnsafeRawPointer? = nil) {
    precondition(byteCount >= 0, "negative allocation size")
    let extra = other == nil ? 0 : AlignedStorage.aliasSpan
    func place(_ base: UnsafeMutableRawPointer) -> Int {
      guard let other else { return 0 }
      let apart = Int(bitPattern: other) + AlignedStorage.aliasSpan / 2 - Int(bitPattern: base)
      return apart & (AlignedStorage.aliasSpan - 1) & ~(AlignedStorage.alignment - 1)
    }
    if byteCount + extra >= AlignedStorage.poolThreshold {
      let unit = AlignedStorage.blockUnit(byteCount + extra)
      let capacity = (byteCount + extra + unit - 1) / unit * unit
      let block = LargeBlockPool.shared.take(capacity) { AlignedStorage.allocateLarge($0) }
      offset = place(block.pointer)
      self.pointer = block.pointer + offset
      if zeroed { memset(self.pointer, 0, byteCount) }
      self.byteCount = byteCount
      self.pooledCapacity = block.capacity
      return
    }
    var raw: UnsafeMutableRawPointer?
    let status = posix_memalign(&raw, AlignedStorage.alignment, max(byteCount + extra, AlignedStorage.alignment))
    guard status == 0, let raw else {
      fatalError("out of memory allocating \(byteCount) bytes")
    }
    offset = place(raw)
    self.pointer = raw + offset
    if zeroed { memset(self.pointer, 0, byteCount) }
    self.byteCount = byteCount
    self.pooledCapacity = nil
  }

  private static func allocateLarge(_ capacity: Int) -> UnsafeMutableRawPointer {
    let huge = capacity >= hugePageThreshold
    var raw: UnsafeMutableRawPointer?
    guard posix_memalign(&raw, huge ? hugePageSize : alignment, capacity) == 0, let raw else {
      fatalError("out of memory allocating \(capacity) bytes")
    }
    if huge { adviseHugePages(UnsafeMutableRawBufferPointer(start: raw, count: capacity)) }
    return raw
  }

  /// Takes ownership of memory from `malloc` or `posix_memalign`; it is
  /// released with `free()` when this object goes away.
  public init(adopting pointer: UnsafeMutableRawPointer, byteCount: Int) {
    self.pointer = pointer
    self.byteCount = byteCount
    self.pooledCapacity = nil
    self.offset = 0
  }

  deinit {
    let block = pointer - offset
    if let capacity = pooledCapacity {
      if !LargeBlockPool.shared.give(block, capacity: capacity) { LargeBlockPool.shared.release(block, capacity: capacity) }
      return
    }
    free(block)
  }

  /// Asks for transparent huge pages over the whole 2 MiB pages inside
  /// `bytes`, memory not yet written (a large block of the pool, or a large
  /// Swift array just allocated, which `malloc` maps without asking): each
  /// is then faulted in once instead of 512 times; a refusal only costs
  /// speed. Large packed weights (a product's, a convolution's panels) are
  /// written by a fresh process's first run.
  public static func adviseHugePages(_ bytes: UnsafeMutableRawBufferPointer) {
    #if os(Linux)
    guard let base = bytes.baseAddress, bytes.count >= 2 * hugePageSize else { return }
    let start = (Int(bitPattern: base) + hugePageSize - 1) / hugePageSize * hugePageSize
    let end = (Int(bitPattern: base) + bytes.count) / hugePageSize * hugePageSize
    if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, 14) }  // MADV_HUGEPAGE
    #endif
  }

  /// A new allocation holding the same bytes.
  public func copy() -> AlignedStorage {
    let other = AlignedStorage(byteCount: byteCount, zeroed: false)
    other.pointer.copyMemory(from: pointer, byteCount: byteCount)
    return other
  }
}

/// Keeps freed large blocks for reuse. Fresh memory costs a page fault and
/// a kernel page clear per page on first write, which for a fast filter or
/// a network of many layers costs more than the arithmetic; a network's
/// activations, a batch of same-size images, or a program calling a filter
/// repeatedly get blocks back here already mapped. A request takes the
/// smallest kept block of at least its size and at most twice it, of equal
/// ones the last kept, whose lines are likeliest still in cache (a
/// layer's output then lands where its input's input just was); at most
/// `maxBlocks` blocks and `maxBytes` are kept, the oldest going first.
///
/// Kept blocks stay in proportion to what the process uses: before a
/// request that no kept block fits maps new memory, kept blocks go (oldest
/// first) until the blocks in use, the kept ones and the new one together
/// are within 1.5 times the most that was ever in use at once. A run over
/// tiles of an image then holds the blocks of one tile's layers for the
/// next tile (they outnumber those in use at any one time, but not by
/// half on a chain of convolutions), not a pool of every size seen.
///
/// New memory comes from `posix_memalign`, or, after `faultAhead`, first
/// from a reserve that a thread of its own faults in before the run
/// (`FaultedReserve`): a fresh process's first run then pays fewer page
/// clears on the threads doing the work.
public final class LargeBlockPool: @unchecked Sendable {
  static let shared = LargeBlockPool()
  static let maxBlocks = 64
  static let maxBytes = 1 << 30

  private let lock = Lock()
  private var blocks: [(pointer: UnsafeMutableRawPointer, capacity: Int)] = []
  /// Bytes kept, in use (handed out and not yet given back), and the most
  /// ever in use at once.
  private var held = 0, inUse = 0, peakInUse = 0

  /// `shared` is the pool; tests make their own.
  init() {}

  /// Bytes kept for reuse and bytes in use, as the rule above counts them.
  var counts: (kept: Int, inUse: Int, peakInUse: Int) {
    lock.lock()
    defer { lock.unlock() }
    return (held, inUse, peakInUse)
  }

  /// A kept block of `capacity` to `2 * capacity` bytes, or else a new one
  /// from `allocate(capacity)`; the block's actual capacity is returned
  /// with it.
  func take(_ capacity: Int, allocate: (Int) -> UnsafeMutableRawPointer)
    -> (pointer: UnsafeMutableRawPointer, capacity: Int)
  {
    lock.lock()
    var best: Int?
    for (i, block) in blocks.enumerated() where block.capacity >= capacity && block.capacity <= 2 * capacity {
      if best == nil || block.capacity <= blocks[best!].capacity { best = i }
    }
    if let index = best {
      let block = blocks.remove(at: index)
      held -= block.capacity
      inUse += block.capacity
      peakInUse = max(peakInUse, inUse)
      lock.unlock()
      return block
    }
    var released: [(pointer: UnsafeMutableRawPointer, capacity: Int)] = []
    while !blocks.isEmpty && inUse + held + capacity > peakInUse + peakInUse / 2 {
      let oldest = blocks.removeFirst()
      held -= oldest.capacity
      released.append(oldest)
    }
    inUse += capacity
    peakInUse = max(peakInUse, inUse)
    let cut = reserve?.cut(capacity)
    lock.unlock()
    for block in released { release(block.pointer, capacity: block.capacity) }
    return (cut ?? allocate(capacity), capacity)
  }

  /// Keeps `pointer`, freeing the oldest kept blocks to make room; false
  /// (the caller frees it) when it alone is over the limit.
  func give(_ pointer: UnsafeMutableRawPointer, capacity: Int) -> Bool {
    lock.lock()
    defer { lock.unlock() }
    inUse -= capacity
    guard capacity <= Self.maxBytes else { return false }
    while !blocks.isEmpty && (blocks.count >= Self.maxBlocks || held + capacity > Self.maxBytes) {
      let oldest = blocks.removeFirst()
      held -= oldest.capacity
      release(oldest.pointer, capacity: oldest.capacity)
    }
    blocks.append((pointer, capacity))
    held += capacity
    return true
  }

  /// Gives a block that is not kept back to the system: `free`, or the
  /// reserve's `release` for a block cut from it.
  func release(_ pointer: UnsafeMutableRawPointer, capacity: Int) {
    if let reserve, reserve.holds(pointer) {
      reserve.release(pointer, capacity: capacity)
    } else {
      free(pointer)
    }
  }

  /// Set once by `faultAhead`; new blocks are cut from it while it lasts
  /// (with `lock` held, which guards its cutting). A lock of its own, as
  /// `release` runs both with `lock` held and without.
  private let reserveSlot = Mutex<FaultedReserve?>(nil)
  var reserve: FaultedReserve? { reserveSlot.withLock { $0 } }

  /// Bytes `faultAhead` reserves by default: a fresh process's first run
  /// of VGG16 blocks 1-2 on a 224x224 image takes about 40 MB of blocks
  /// (activations, the hypercolumn bands); what the thread faults in
  /// before the run and the run does not use stays with the process.
  public static let faultAheadBytes = 64 << 20

  /// Makes `reserve` the address space new blocks come from and starts a
  /// thread faulting it in, so that a model's first run finds its memory
  /// present (see `FaultedReserve`); `stopFaultingAhead` ends the thread.
  /// Only where the process may use more than one core: on one, the
  /// faulting would take the core the work before the run needs. Once per
  /// process; later calls do nothing.
  public static func faultAhead(_ bytes: Int = faultAheadBytes) {
    guard CPULimit.available > 1 else { return }
    let capped = faultAheadCap(bytes, budget: MemoryBudget.current.bytes)
    if capped > 0 { shared.startReserve(capped) }
  }

  /// `bytes`, at most a sixteenth of the memory budget (`MemoryBudget`:
  /// three quarters of a cgroup's limit, or `--max-memory`), so that pages
  /// a run may not take cannot push a process kept to a small limit over
  /// it; 0 (no reserve) below one huge page.
  static func faultAheadCap(_ bytes: Int, budget: Int) -> Int {
    let capped = min(bytes, budget / 16)
    return capped >= AlignedStorage.hugePageSize ? capped : 0
  }

  /// Keeps the reserve within `faultAheadCap` of the memory budget as it
  /// now stands: `faultAhead` may start before a command line's
  /// `--max-memory` is read.
  public static func capFaultAhead() {
    shared.withReserve { $0.limit(to: faultAheadCap($0.size, budget: MemoryBudget.current.bytes)) }
  }

  /// Stops the thread `faultAhead` started: the run's own threads take
  /// the cores from here.
  public static func stopFaultingAhead() {
    shared.reserve?.stop()
  }

  /// After a first run: the reserve's pages no block took go back
  /// (`FaultedReserve.trim`).
  public static func trimFaultedAhead() {
    shared.withReserve { $0.trim() }
  }

  /// `body(reserve)` with the pool's lock held (which guards the
  /// reserve's cutting), when there is a reserve.
  private func withReserve(_ body: (FaultedReserve) -> Void) {
    guard let reserve else { return }
    lock.lock()
    body(reserve)
    lock.unlock()
  }

  /// `faultAhead` on this pool, on any number of cores (tests); with
  /// `thread` false, nothing faults the reserve in.
  func startReserve(_ bytes: Int, thread: Bool = true) {
    let made = reserveSlot.withLock { slot -> FaultedReserve? in
      guard slot == nil, let made = FaultedReserve(bytes: bytes) else { return nil }
      slot = made
      return made
    }
    if thread { made?.startFaulting() }
  }
}
