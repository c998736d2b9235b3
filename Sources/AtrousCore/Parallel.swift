import Dispatch
import _CKernels
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Work split across the machine's cores.
public enum Parallel {
  /// Cores available to this process: its CPU set and cgroup quota
  /// (`CPULimit`), not the whole machine's.
  public static let coreCount: Int = CPULimit.available

  /// Threads that loops not handed a thread count may use on the calling
  /// task: `coreCount`, or less while an executor that was given fewer
  /// runs (so a 1-thread run leaves the other cores alone).
  @TaskLocal public static var budget: Int = coreCount

  /// Runs `body(i)` for i in 0..<count on up to `count` threads and returns
  /// when all are done: on `WorkerPool.shared` and the calling thread when
  /// the pool is free. One iteration runs on the calling thread alone.
  ///
  /// The iterations must touch disjoint data (their own rows, their own
  /// scratch objects): that is what makes passing a non-Sendable closure
  /// safe here, and every caller is written that way.
  /// Iterations use the calling thread's instruction set
  /// (`InstructionSet.with`) on whichever thread they run.
  public static func run(_ count: Int, _ body: (Int) -> Void) {
    if count <= 1 {
      if count == 1 { body(0) }
      return
    }
    let isa = atr_isa_thread()
    if isa >= 0 {
      // A thread with its own choice (a test): each iteration takes it on.
      return withoutActuallyEscaping(body) { body in
        spread(count) { index in
          let before = atr_isa_set_thread(isa)
          body(index)
          atr_isa_set_thread(before)
        }
      }
    }
    spread(count, body)
  }

  private static func spread(_ count: Int, _ body: (Int) -> Void) {
    if WorkerPool.shared.run(count, body) { return }
    // The pool is taken (a parallel loop inside another, or two callers at
    // once): the system's threads.
    withoutActuallyEscaping(body) { body in
      let shared = unsafeBitCast(body, to: (@Sendable (Int) -> Void).self)
      DispatchQueue.concurrentPerform(iterations: count, execute: shared)
    }
  }

  /// Runs `body(worker, index)` for every index in 0..<count on up to
  /// `workers` threads, handing the indices out in order, one at a time, to
  /// whichever thread is free: a thread that starts late or runs slow (the
  /// other core busy with another program) takes fewer, instead of holding
  /// everyone up. Indices go out in increasing order.
  public static func dynamic(_ count: Int, workers: Int, _ body: (_ worker: Int, _ index: Int) -> Void) {
    let workers = max(1, min(workers, count))
    if workers == 1 {
      for index in 0..<count { body(0, index) }
      return
    }
    let next = Counter()
    run(workers) { worker in
      while true {
        let index = next.take()
        if index >= count { break }
        body(worker, index)
      }
    }
  }

  private final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func take() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
  }

  /// Runs `body(part, range)` over 0..<total cut into `parts` contiguous
  /// bands (as `ranges` cuts it), on up to `parts` threads: each part takes
  /// its own band in chunks of `grain` from the front, then chunks from the
  /// back of the others' bands. Each band still goes, in order, to one
  /// thread when the threads keep pace (so the next layer's thread finds
  /// its rows in its own core's cache), but a thread that starts late or
  /// runs slow (its core taken by another program for a while) holds the
  /// others up by at most one chunk instead of its whole band. The calls
  /// with one `part` never overlap, so per-part scratch is safe.
  public static func bands(_ total: Int, parts: Int, grain: Int, _ body: (_ part: Int, _ range: Range<Int>) -> Void) {
    guard total > 0 else { return }
    // One part: the whole range at once, nothing to share out.
    if parts <= 1 || total == 1 { return body(0, 0..<total) }
    let ranges = ranges(total, parts: parts)
    guard ranges.count > 1, total <= Int(UInt32.max) else {
      run(ranges.count) { body($0, ranges[$0]) }
      return
    }
    let state = UnsafeMutablePointer<UInt64>.allocate(capacity: ranges.count)  // (front << 32 | back) per band
    defer { state.deallocate() }
    for (band, range) in ranges.enumerated() { state[band] = UInt64(range.lowerBound) << 32 | UInt64(range.upperBound) }
    let grain = UInt32(max(1, min(grain, total)))
    run(ranges.count) { part in
      var (lo, hi): (UInt32, UInt32) = (0, 0)
      while atr_band_take(state + part, grain, 0, &lo, &hi) != 0 { body(part, Int(lo)..<Int(hi)) }
      for step in 1..<ranges.count {
        let other = (part + step) % ranges.count
        while atr_band_take(state + other, grain, 1, &lo, &hi) != 0 { body(part, Int(lo)..<Int(hi)) }
      }
    }
  }

  /// Splits 0..<total into `parts` contiguous ranges of near-equal length.
  public static func ranges(_ total: Int, parts: Int) -> [Range<Int>] {
    let parts = max(1, min(parts, total))
    return (0..<parts).map { part in (total * part / parts)..<(total * (part + 1) / parts) }
  }
}
