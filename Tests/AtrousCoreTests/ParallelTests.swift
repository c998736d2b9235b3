import AtrousCore
import Foundation
import Synchronization
import Testing

@Suite struct ParallelTests {
  @Test(arguments: [(0, 2), (1, 2), (7, 1), (100, 2), (1000, 3)])
  func dynamicRunsEveryIndexOnce(count: Int, workers: Int) {
    let runs = Mutex([Int](repeating: 0, count: count))
    let workerNumbers = Mutex(Set<Int>())
    Parallel.dynamic(count, workers: workers) { worker, index in
      runs.withLock { $0[index] += 1 }
      workerNumbers.withLock { _ = $0.insert(worker) }
    }
    #expect(runs.withLock { $0.allSatisfy { $0 == 1 } })
    #expect(workerNumbers.withLock { $0.allSatisfy { (0..<workers).contains($0) } })
  }
}

extension ParallelTests {
  /// Every index once, in chunks of at most `grain`, no part running two
  /// chunks at once; and the last band is shared: its owner's first chunk
  /// waits (up to 5 s) until another part has taken a chunk from that
  /// band's back, which the others do once their own bands are done (or,
  /// run one after the other, part 0 takes all of the last band first).
  @Test(arguments: [(0, 2, 4), (1, 2, 4), (10, 3, 1), (1000, 2, 37), (1000, 3, 1000), (97, 2, 5)])
  func bandsRunEveryIndexOnce(total: Int, parts: Int, grain: Int) {
    let runs = Mutex([Int](repeating: 0, count: total))
    let busy = Mutex([Bool](repeating: false, count: parts))
    let overlapped = Mutex(false), stolen = Mutex(false)
    let bands = Parallel.ranges(total, parts: parts)
    let sharing = bands.count > 1 && bands.last!.count > grain
    Parallel.bands(total, parts: parts, grain: grain) { part, range in
      busy.withLock { if $0[part] { overlapped.withLock { $0 = true } }; $0[part] = true }
      #expect(range.count <= grain && !range.isEmpty)
      let last = bands.count - 1
      if part != last && bands[last].contains(range.lowerBound) { stolen.withLock { $0 = true } }
      if sharing && part == last && range.lowerBound == bands[last].lowerBound {
        let clock = ContinuousClock(), deadline = clock.now + .seconds(5)
        while !stolen.withLock({ $0 }) && clock.now < deadline { Thread.sleep(forTimeInterval: 0.001) }
      }
      runs.withLock { for i in range { $0[i] += 1 } }
      busy.withLock { $0[part] = false }
    }
    #expect(runs.withLock { $0.allSatisfy { $0 == 1 } })
    #expect(!overlapped.withLock { $0 })
    if sharing { #expect(stolen.withLock { $0 }) }
  }
}

extension ParallelTests {
  /// A thread's own instruction set reaches every iteration of the
  /// parallel loops it starts, on whichever thread they run, and is undone
  /// after; the process's choice is never wider than the CPU's.
  @Test(arguments: InstructionSet.available)
  func instructionSetReachesEveryIteration(isa: InstructionSet) {
    #expect(InstructionSet.process <= InstructionSet.supported)
    let seen = Mutex([InstructionSet?](repeating: nil, count: 64))
    InstructionSet.with(isa) {
      #expect(InstructionSet.current == isa)
      Parallel.run(64) { index in seen.withLock { $0[index] = InstructionSet.current } }
    }
    #expect(seen.withLock { $0.allSatisfy { $0 == isa } })
    #expect(InstructionSet.current == InstructionSet.process)
    // Asked for more than the CPU has, a thread gets what it has.
    InstructionSet.with(.avx512) { #expect(InstructionSet.current == InstructionSet.supported) }
  }
}
