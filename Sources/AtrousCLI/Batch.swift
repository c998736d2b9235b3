import ArgumentParser
import AtrousBatch
import AtrousCore
import AtrousIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs one job per input file across the cores given, with progress on
/// standard error, each failure reported as it happens, and a summary at
/// the end. Every good file is still written when others fail.
///
/// Progress: on a terminal, one line redrawn (`ProgressLine`: files done
/// and failed, rate, time left; or a single file's own units); in a log
/// (standard error not a terminal), one line per file of a batch of
/// several, so a cluster job's output file shows where it is.
/// With a `ShardRun`, each file's manifest line is appended as it ends.
final class Batch: @unchecked Sendable {
  private let lock = Lock()
  /// Positions (in the command's input list) to run.
  private let positions: [Int]
  private let describe: (Int) -> String
  private let shardRun: ShardRun?
  private let quiet: Bool
  private let threads: Int
  private var failed = 0, finished = 0
  private let start = ContinuousClock.now
  /// Files done, for a batch of several on a terminal.
  private let files: ProgressLine?
  /// A single file's own progress, when its job reports one.
  private var inside: ProgressLine?
  /// A line per file in a log.
  private let logsFiles: Bool
  /// Stage times summed over files.
  let totals = StageTimes()
  private var warned: Set<String> = []

  /// - Parameters:
  ///   - threads: cores for the whole batch (`--threads`, else the CPU set
  ///     this task may use), shared as files at once times threads each.
  ///   - describe: the input at a position, for messages.
  init(positions: [Int], threads: Int? = nil, quiet: Bool = false, shardRun: ShardRun? = nil,
       describe: @escaping (Int) -> String = { String($0) }) {
    self.positions = positions
    self.describe = describe
    self.shardRun = shardRun
    self.quiet = quiet
    self.threads = max(1, threads ?? Parallel.coreCount)
    let terminal = isatty(STDERR_FILENO) == 1
    files = positions.count > 1 ? ProgressLine(total: positions.count, unit: "files", quiet: quiet) : nil
    logsFiles = positions.count > 1 && !quiet && !terminal
    // Files run at once share the memory the process may use: each
    // buffer's default budget is their share (--max-memory sets one).
    if workers > 1 && !MemoryBudget.isInstalled {
      let detected = MemoryBudget.detected
      MemoryBudget.install(MemoryBudget(bytes: detected.bytes / workers,
                                        source: detected.source.replacing("; --max-memory", with: ", shared by \(workers) files at once; --max-memory")))
    }
  }

  /// For a batch of one file: a progress line for its `total` `unit`s
  /// (rows, pixels), which the job advances. Nil for several files, whose
  /// line counts files.
  func progress(total units: Int, unit: String) -> ProgressLine? {
    guard positions.count == 1 else { return nil }
    let line = ProgressLine(total: units, unit: unit, quiet: quiet)
    lock.lock()
    inside = line
    lock.unlock()
    return line
  }

  /// Files run at once: one per core given, at most one per file.
  var workers: Int { max(1, min(positions.count, threads)) }
  /// The cores each of the `workers` jobs may use.
  var threadsPerJob: Int { max(1, threads / workers) }

  /// Runs `job(position, threads, times)` for every position; `threads`
  /// is what each job may use, `times` its own stages. Returns false if
  /// any job threw.
  func run(_ job: @escaping (_ position: Int, _ threads: Int, _ times: StageTimes) throws -> Void) -> Bool {
    let (workers, threadsPerJob) = (self.workers, self.threadsPerJob)
    Parallel.run(workers) { worker in
      for k in stride(from: worker, to: self.positions.count, by: workers) {
        let position = self.positions[k], times = StageTimes()
        do {
          try job(position, threadsPerJob, times)
          self.finish(position, failure: nil, times: times)
        } catch {
          self.finish(position, failure: error, times: times)
        }
      }
    }
    files?.clear()
    inside?.clear()
    if failed > 0 && positions.count > 1 { Reporting.printError("error: \(failed) of \(positions.count) files failed") }
    return failed == 0
  }

  /// The stage times summed over files, after the instruction set and
  /// `threads: 2 files at once x 1 thread each`.
  func printTimings() {
    let files = workers == 1 ? "1 file" : "\(workers) files", each = threadsPerJob == 1 ? "1 thread" : "\(threadsPerJob) threads"
    totals.print(after: ["threads: \(files) at once x \(each) each"])
  }

  /// Prints `line` to standard error the first time `key` is given, so a
  /// warning about the settings is not repeated for every file.
  func warnOnce(_ key: String, _ line: String) {
    lock.lock()
    defer { lock.unlock() }
    guard warned.insert(key).inserted else { return }
    files?.clear()
    inside?.clear()
    Reporting.printError(line)
  }

  private func finish(_ position: Int, failure: Error?, times: StageTimes) {
    totals.add(times)
    var manifestError: Error?
    do {
      try shardRun?.finish(position: position, error: failure.map { Reporting.reason(for: $0, file: describe(position)) },
                           ms: times.dictionary)
    } catch {
      manifestError = error
    }
    lock.lock()
    defer { lock.unlock() }
    finished += 1
    if let failure {
      failed += 1
      files?.clear()
      inside?.clear()
      Reporting.fail(failure, file: describe(position))
    }
    if let manifestError {
      files?.clear()
      Reporting.fail(manifestError, file: shardRun?.manifestPath ?? "")
    }
    if logsFiles {
      let ms = times.dictionary.values.reduce(0, +)
      Reporting.printError("[\(finished)/\(positions.count)] \(failure == nil ? "done" : "failed") \(describe(position))"
                             + (failure == nil ? String(printf: " (%.0f ms)", ms) : ""))
    }
    files?.advance(failed: failure != nil)
  }
}

/// Milliseconds per named stage (decode, model, write...), in the order
/// first recorded. Safe to record into from any thread.
final class StageTimes: @unchecked Sendable {
  private let lock = Lock()
  private var stages: [(stage: String, milliseconds: Double)] = []

  /// Adds a stage's time, in milliseconds.
  func record(_ stage: String, _ milliseconds: Double) {
    lock.lock()
    defer { lock.unlock() }
    if let i = stages.firstIndex(where: { $0.stage == stage }) {
      stages[i].milliseconds += milliseconds
    } else {
      stages.append((stage, milliseconds))
    }
  }

  /// Adds every stage of `other`.
  func add(_ other: StageTimes) {
    for (stage, ms) in other.list { record(stage, ms) }
  }

  var list: [(stage: String, milliseconds: Double)] {
    lock.lock()
    defer { lock.unlock() }
    return stages
  }

  var dictionary: [String: Double] { Dictionary(list.map { ($0.stage, $0.milliseconds) }, uniquingKeysWith: +) }

  /// `timing: <stage> <milliseconds>` lines on standard error, after the
  /// instruction set the kernels ran with (`kernels: avx2`) and `lines`.
  func print(after lines: [String] = []) {
    Reporting.printError("kernels: \(InstructionSet.process)")
    for line in lines { Reporting.printError(line) }
    for (stage, ms) in list { Reporting.printError("timing: \(stage) \(String(printf: "%.3f", ms))") }
  }
}

/// Times `body` and records it under `stage`.
func timed<T>(_ stage: String, in times: StageTimes, _ body: () throws -> T) rethrows -> T {
  let clock = ContinuousClock()
  let start = clock.now
  defer {
    let elapsed = clock.now - start
    times.record(stage, elapsed.milliseconds)
  }
  return try body()
}
