import AtrousCore
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
