@testable import AtrousCore
import Dispatch
import Testing
import _CKernels

#if canImport(Glibc)
import Glibc
#endif

/// The address space the block pool cuts new blocks from while a thread
/// faults it in: pages faulted in without changing what blocks already
/// hold, blocks cut in order and aligned as `AlignedStorage` aligns them.
@Suite struct FaultedReserveTests {
  private static let page = 4096

  /// Which of `count` pages from `start` are resident.
  private func resident(_ start: UnsafeMutableRawPointer, pages count: Int) -> [Bool] {
    var vector = [UInt8](repeating: 0, count: count)
    #expect(mincore(start, count * Self.page, &vector) == 0)
    return vector.map { $0 & 1 == 1 }
  }

  @Test func touchingFaultsPagesInAndKeepsTheirBytes() throws {
    let count = 64, bytes = count * Self.page
    let mapped = try #require(mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
    #expect(mapped != MAP_FAILED)
    defer { munmap(mapped, bytes) }
    let words = mapped.assumingMemoryBound(to: Int32.self)
    let wordsPerPage = Self.page / 4
    for page in stride(from: 0, to: count, by: 3) { words[page * wordsPerPage] = Int32(page + 1) }
    #expect(resident(mapped, pages: count).filter { $0 }.count == (count + 2) / 3, "only the written pages yet")
    atr_touch_pages(mapped, bytes)
    #expect(resident(mapped, pages: count).allSatisfy { $0 })
    for page in 0..<count {
      #expect(words[page * wordsPerPage] == (page % 3 == 0 ? Int32(page + 1) : 0))
    }
  }

  @Test func blocksAreCutInOrderAlignedAsTheirSize() throws {
    let huge = AlignedStorage.hugePageSize
    let reserve = try #require(FaultedReserve(bytes: 15 << 20))  // rounded up to 16 MiB
    #expect(reserve.size == 16 << 20 && Int(bitPattern: reserve.base) % huge == 0)
    let small = try #require(reserve.cut(300 << 10))
    #expect(small == reserve.base)
    let second = try #require(reserve.cut(64 << 10))
    #expect(second - small == 320 << 10, "64 KiB units")
    let large = try #require(reserve.cut(5 << 20))
    #expect((large - reserve.base) % huge == 0 && large - reserve.base == huge, "a huge-page block starts on a huge page")
    #expect(reserve.cut(10 << 20) == nil, "7 MiB + 10 MiB do not fit in 16")
    let last = try #require(reserve.cut(8 << 20))
    #expect(last - reserve.base == 8 << 20)
    #expect(reserve.cut(64 << 10) == nil)
    for pointer in [small, second, large, last] { #expect(reserve.holds(pointer)) }
    let elsewhere = try #require(malloc(64))
    defer { free(elsewhere) }
    #expect(!reserve.holds(elsewhere) && !reserve.holds(reserve.base + reserve.size))
  }

  /// With a reserve, a request no kept block fits is cut from it until it
  /// runs out; a block the pool lets go loses its pages but not its
  /// addresses (the faulting thread may still touch them).
  @Test func thePoolCutsNewBlocksFromItsReserve() throws {
    let pool = LargeBlockPool()
    pool.startReserve(4 << 20, thread: false)
    let reserve = try #require(pool.reserve)
    var allocated = 0
    func allocate(_ capacity: Int) -> UnsafeMutableRawPointer {
      allocated += 1
      return malloc(capacity)!
    }
    let first = pool.take(1 << 20, allocate: allocate)
    let second = pool.take(2 << 20, allocate: allocate)
    #expect(allocated == 0 && reserve.holds(first.pointer) && reserve.holds(second.pointer))
    let third = pool.take(2 << 20, allocate: allocate)
    #expect(allocated == 1 && !reserve.holds(third.pointer), "past the reserve's end")
    memset(first.pointer, 0xAB, first.capacity)
    pool.release(first.pointer, capacity: first.capacity)
    let bytes = first.pointer.assumingMemoryBound(to: UInt8.self)
    #expect(bytes[0] == 0 && bytes[first.capacity - 1] == 0, "its pages went; the addresses still read")
    pool.release(second.pointer, capacity: second.capacity)
    pool.release(third.pointer, capacity: third.capacity)
  }

  /// Blocks cut and written while the reserve is faulted in on another
  /// thread keep every byte written.
  @Test func faultingBesideWritesKeepsThem() throws {
    let reserve = try #require(FaultedReserve(bytes: 32 << 20))
    let blockBytes = 1 << 20
    let offsets = (0..<32).map { _ in reserve.cut(blockBytes)! - reserve.base }
    DispatchQueue.concurrentPerform(iterations: 2) { part in
      if part == 0 {
        reserve.fault()
      } else {
        for (index, offset) in offsets.enumerated() {
          let words = (reserve.base + offset).assumingMemoryBound(to: Int32.self)
          for i in 0..<(blockBytes / 4) { words[i] = Int32(index << 20 | i) }
        }
      }
    }
    var wrong = 0
    for (index, offset) in offsets.enumerated() {
      let words = (reserve.base + offset).assumingMemoryBound(to: Int32.self)
      for i in 0..<(blockBytes / 4) where words[i] != Int32(index << 20 | i) { wrong += 1 }
    }
    #expect(wrong == 0)
    #expect(resident(reserve.base, pages: reserve.size / Self.page).allSatisfy { $0 })
  }

  /// After a first run, the pages past the last block cut go back; the
  /// blocks keep theirs, and a block cut later still works.
  @Test func trimmingGivesBackWhatNoBlockTook() throws {
    let reserve = try #require(FaultedReserve(bytes: 8 << 20))
    let pages = reserve.size / Self.page
    reserve.fault()
    #expect(resident(reserve.base, pages: pages).allSatisfy { $0 })
    let block = try #require(reserve.cut(1 << 20))
    memset(block, 7, 1 << 20)
    reserve.trim()
    let after = resident(reserve.base, pages: pages)
    let blockPages = (1 << 20) / Self.page
    #expect(after.prefix(blockPages).allSatisfy { $0 } && after.dropFirst(blockPages).allSatisfy { !$0 })
    #expect(block.load(fromByteOffset: (1 << 20) - 1, as: UInt8.self) == 7)
    let later = try #require(reserve.cut(1 << 20))
    memset(later, 9, 1 << 20)
    #expect(later.load(as: UInt8.self) == 9)
    reserve.trim()
    #expect(resident(later, pages: blockPages).allSatisfy { $0 }, "trimmed once only")
  }

  /// The reserve stays a small part of what the process may use: none
  /// under a budget of 32 MiB, 4 MiB under 64, the full 64 from 1 GiB.
  @Test func theReserveIsCappedByTheMemoryBudget() {
    let full = LargeBlockPool.faultAheadBytes
    #expect(LargeBlockPool.faultAheadCap(full, budget: 16 << 20) == 0)
    #expect(LargeBlockPool.faultAheadCap(full, budget: 64 << 20) == 4 << 20)
    #expect(LargeBlockPool.faultAheadCap(full, budget: 1 << 30) == full)
    #expect(LargeBlockPool.faultAheadCap(full, budget: 8 << 30) == full)
  }

  /// A budget settled after the reserve started (a command line's
  /// `--max-memory`) limits it: the pages past the limit go, blocks are no
  /// longer cut past it and the thread faults no more there; blocks
  /// already cut are never cut off, and a limit never grows the reserve.
  @Test func limitingGivesBackThePagesPastTheLimit() throws {
    let huge = AlignedStorage.hugePageSize
    let reserve = try #require(FaultedReserve(bytes: 8 << 20))
    let pages = reserve.size / Self.page, hugePages = huge / Self.page
    reserve.fault()
    let block = try #require(reserve.cut(1 << 20))
    memset(block, 5, 1 << 20)
    reserve.limit(to: 3 << 20)  // rounded up to 4 MiB
    var after = resident(reserve.base, pages: pages)
    #expect(after.prefix(2 * hugePages).allSatisfy { $0 } && after.dropFirst(2 * hugePages).allSatisfy { !$0 })
    #expect(block.load(fromByteOffset: (1 << 20) - 1, as: UInt8.self) == 5)
    #expect(reserve.cut(4 << 20) == nil, "1 + 4 MiB past the limit of 4")
    #expect(reserve.cut(3 << 20) != nil)
    reserve.limit(to: 0)
    #expect(resident(reserve.base, pages: 2 * hugePages).allSatisfy { $0 }, "the blocks cut keep their pages")
    reserve.limit(to: 8 << 20)
    #expect(reserve.cut(64 << 10) == nil, "a limit does not grow back")
    reserve.fault()
    after = resident(reserve.base, pages: pages)
    #expect(after.dropFirst(2 * hugePages).allSatisfy { !$0 }, "nothing faulted past the limit")
  }

  /// Stopped before it starts, the thread faults nothing in.
  @Test func aStoppedReserveFaultsNothing() throws {
    let reserve = try #require(FaultedReserve(bytes: 4 << 20))
    reserve.stop()
    reserve.fault()
    #expect(resident(reserve.base, pages: reserve.size / Self.page).allSatisfy { !$0 })
  }
}
