@testable import AtrousCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The pool that keeps freed large blocks: reuse across runs of the same
/// shapes, and kept memory bounded by what is in use.
@Suite struct LargeBlockPoolTests {
  /// One run of a chain of layers as the executor makes it: each output
  /// taken before its input is given back. Sizes in bytes.
  private func runChain(_ pool: LargeBlockPool, sizes: [Int], allocations: inout Int, worst: inout Double) {
    var live: [(pointer: UnsafeMutableRawPointer, capacity: Int)] = []
    for size in sizes {
      live.append(pool.take(size) { capacity in
        allocations += 1
        return malloc(capacity)!
      })
      if live.count > 2 {
        let done = live.removeFirst()
        if !pool.give(done.pointer, capacity: done.capacity) { free(done.pointer) }
      }
      let c = pool.counts
      worst = max(worst, Double(c.kept + c.inUse) / Double(c.peakInUse))
    }
    for block in live where !pool.give(block.pointer, capacity: block.capacity) { free(block.pointer) }
  }

  /// Blocks from `poolThreshold` up go through the pool, smaller ones to
  /// `malloc`: a kernel's per-call scratch of 64 KiB and more is kept
  /// between calls instead of mapped and faulted in again.
  @Test func scratchFrom64KiBIsPooled() {
    #expect(AlignedStorage(byteCount: 64 << 10, zeroed: false).isPooled)
    #expect(AlignedStorage(byteCount: 200_000, zeroed: false).isPooled)
    #expect(!AlignedStorage(byteCount: (64 << 10) - 1, zeroed: false).isPooled)
  }

  /// Storage placed apart from another address: 64-byte aligned, half of
  /// `aliasSpan` away from it in the low bits, zeroed when asked, whole,
  /// and given back as the block it was cut from, pooled or not (freeing
  /// any other address aborts; a pooled one would come back misplaced).
  @Test func storageApartFromAnotherIsHalfASpanAway() {
    let other = AlignedStorage(byteCount: 8192, zeroed: false)
    let span = AlignedStorage.aliasSpan
    for byteCount in [0, 100, 64 << 10, 5 << 20] {
      for shift in [0, 64, 37 * 64, span - 64] {
        do {
          let storage = AlignedStorage(byteCount: byteCount, zeroed: true, apartFrom: UnsafeRawPointer(other.pointer + shift))
          let address = Int(bitPattern: storage.pointer), from = Int(bitPattern: other.pointer + shift)
          #expect(address % AlignedStorage.alignment == 0)
          #expect((address - from) & (span - 1) == span / 2, "\(byteCount) bytes, \(shift) from the other's start")
          let bytes = UnsafeMutableRawBufferPointer(start: storage.pointer, count: byteCount)
          #expect(bytes.allSatisfy { $0 == 0 })
          for i in stride(from: 0, to: byteCount, by: 4096) { bytes[i] = 1 }
          if byteCount > 0 { bytes[byteCount - 1] = 1 }
          #expect(storage.isPooled == (byteCount >= AlignedStorage.poolThreshold))
        }
        // A large block goes back whole: whether this one is it or a new
        // one, it starts on a huge page.
        let again = AlignedStorage(byteCount: byteCount + span, zeroed: false)
        if byteCount + span >= AlignedStorage.hugePageThreshold {
          #expect(Int(bitPattern: again.pointer) % AlignedStorage.hugePageSize == 0)
        }
      }
    }
  }

  @Test func repeatedRunsReuseEveryBlock() {
    let pool = LargeBlockPool()
    let sizes = [170, 170, 44, 86, 86].map { $0 << 10 }
    var allocations = 0, worst = 0.0
    runChain(pool, sizes: sizes, allocations: &allocations, worst: &worst)
    let first = allocations
    for _ in 0..<5 { runChain(pool, sizes: sizes, allocations: &allocations, worst: &worst) }
    #expect(allocations == first, "later runs of the same shapes map no new memory")
  }

  /// Of kept blocks of one size, a request takes the one given back last:
  /// its lines are the likeliest still in cache.
  @Test func equalBlocksComeBackLastKeptFirst() {
    let pool = LargeBlockPool()
    let size = 300 << 10
    let blocks = (0..<3).map { _ in pool.take(size) { malloc($0)! } }
    for block in blocks { #expect(pool.give(block.pointer, capacity: block.capacity)) }
    for expected in blocks.reversed() {
      let again = pool.take(size) { _ in Issue.record("a kept block of the size was there"); return malloc(size)! }
      #expect(again.pointer == expected.pointer)
    }
    for block in blocks { free(block.pointer) }
  }

  /// Tiles of slowly growing sizes: each fits no kept block within the
  /// reuse window after a few, so an unbounded pool would keep every size.
  @Test func keptMemoryStaysWithinHalfThePeakInUse() {
    let pool = LargeBlockPool()
    var allocations = 0, worst = 0.0
    for step in 0..<40 {
      let scale = 1 + Double(step) * 0.15
      runChain(pool, sizes: [170, 170, 44, 86, 86].map { Int(Double($0 << 10) * scale) },
               allocations: &allocations, worst: &worst)
    }
    #expect(worst <= 1.5 + 1e-9, "kept and used bytes reached \(worst) times the peak in use")
    #expect(pool.counts.inUse == 0)
  }
}
