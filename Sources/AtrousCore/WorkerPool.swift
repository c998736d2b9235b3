import Synchronization
import _CKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Threads started once per process that run the iterations of
/// `Parallel.run`, so a parallel loop costs no thread wake-up in the common
/// case: after a job a worker spins for a while (`spinLimit` checks) before
/// it sleeps, and a network's nodes come one after another well within that.
///
/// One job runs at a time. A job is an immutable object with its own
/// counters; workers claim iterations from it, so one that wakes late finds
/// every iteration taken and touches nothing. The caller takes part and
/// returns once every iteration has finished, so the body it lends is never
/// called after it returns.
final class WorkerPool: @unchecked Sendable {
  final class Job: @unchecked Sendable {
    let count: Int
    /// Read only for claimed iterations; the caller clears it once they
    /// have all finished, before its loan of the closure ends.
    var body: ((Int) -> Void)?
    let next = Atomic<Int>(0)
    let remaining: Atomic<Int>

    init(count: Int, body: @escaping (Int) -> Void) {
      self.count = count
      self.body = body
      remaining = Atomic<Int>(count)
    }

    /// Runs iterations until none is left to claim.
    func work() {
      while true {
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
        if index >= count { return }
        body?(index)
        remaining.wrappingSubtract(1, ordering: .releasing)
      }
    }
  }

  /// The pool `Parallel.run` uses: one worker per core beside the caller's.
  static let shared = WorkerPool(workers: Parallel.coreCount - 1)

  /// Checks of the job counter a worker makes before it sleeps, each after
  /// a pause hint (tens to a hundred and some cycles, by CPU): a few hundred
  /// microseconds to a millisecond, longer than the gaps between a
  /// network's nodes (waking a sleeping thread costs tens of microseconds,
  /// more than many nodes take), short enough to leave the core to others
  /// soon after.
  static let spinLimit = 20_000

  let workers: Int
  private let busy = Atomic<Bool>(false)
  private let generation = Atomic<Int>(0)
  private let sleepers = Atomic<Int>(0)
  /// The job workers join; read and written under `lock`.
  private var current: Job? = nil
  private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

  init(workers: Int) {
    self.workers = max(0, workers)
    pthread_mutex_init(lock, nil)
    pthread_cond_init(wake, nil)
    // The pool lives as long as the process: its threads hold it. Each
    // steps off the CPU of the thread making the pool (`DetachedThread`).
    let cpu = atr_current_cpu()
    for _ in 0..<self.workers { DetachedThread.start(awayFrom: cpu) { [self] in loop() } }
  }

  /// Runs `body(i)` for i in 0..<count on the workers and the calling
  /// thread. Returns false, having run nothing, when another job holds the
  /// pool (a nested or concurrent call); the caller then runs it another way.
  func run(_ count: Int, _ body: (Int) -> Void) -> Bool {
    guard workers > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
      return false
    }
    withoutActuallyEscaping(body) { body in
      let job = Job(count: count, body: body)
      pthread_mutex_lock(lock)
      current = job
      pthread_mutex_unlock(lock)
      // Sequentially consistent with the workers' side, so either a worker
      // sees the new generation or the caller sees it asleep and wakes it.
      generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
      if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
        pthread_mutex_lock(lock)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(lock)
      }
      job.work()
      while job.remaining.load(ordering: .acquiring) > 0 { atr_spin_pause() }
      pthread_mutex_lock(lock)
      current = nil
      pthread_mutex_unlock(lock)
      job.body = nil
    }
    busy.store(false, ordering: .releasing)
    return true
  }

  private func loop() {
    var seen = 0
    while true {
      var spins = 0
      while generation.load(ordering: .acquiring) == seen {
        spins += 1
        if spins < Self.spinLimit {
          atr_spin_pause()
          continue
        }
        spins = 0
        pthread_mutex_lock(lock)
        sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
        while generation.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(wake, lock) }
        sleepers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(lock)
      }
      seen = generation.load(ordering: .acquiring)
      pthread_mutex_lock(lock)
      let job = current
      pthread_mutex_unlock(lock)
      job?.work()
    }
  }
}
