@testable import AtrousNN
import Testing

/// Scratch for the workers of a parallel loop, cut from one block: each
/// worker's part holds what it writes, whatever the others write, and
/// parts start a whole number of pages apart (no cache line shared).
@Suite struct WorkerScratchTests {
  @Test(arguments: [(1, 100), (2, 221_184), (3, 4096), (4, 1), (2, 0)])
  func partsAreSeparateAndPageApart(workers: Int, bytes: Int) {
    let scratch = WorkerScratch(workers: workers, bytes: bytes)
    let starts = (0..<workers).map { Int(bitPattern: scratch[$0].pointer) }
    for w in 1..<max(1, workers) {
      let gap = starts[w] - starts[w - 1]
      #expect(gap >= bytes && gap % 4096 == 0, "part \(w) starts \(gap) bytes after the one before")
    }
    for w in 0..<workers where bytes > 0 {
      scratch[w].pointer.initializeMemory(as: UInt8.self, repeating: UInt8(w + 1), count: bytes)
    }
    for w in 0..<workers where bytes > 0 {
      let part = UnsafeBufferPointer(start: scratch[w].pointer.assumingMemoryBound(to: UInt8.self), count: bytes)
      #expect(part.allSatisfy { $0 == UInt8(w + 1) }, "part \(w) overwritten")
    }
  }
}
