import ArgumentParser
import AtrousCore
import AtrousIO
import Foundation

/// Runs one job per input file across the cores, with a progress line on a
/// terminal for long runs (`ProgressLine`: files, or a single file's own
/// units), each failure reported as it happens, and a summary at the end.
/// Every good file is still written when others fail.
final class Batch: @unchecked Sendable {
  private let lock = NSLock()
  private let total: Int
  private var failed = 0
  private let quiet: Bool
  /// Files done, for a batch of several.
  private let files: ProgressLine?
  /// A single file's own progress, when its job reports one.
  private var inside: ProgressLine?
  /// Milliseconds per named stage, summed over files.
  private var timings: [(stage: String, milliseconds: Double)] = []
  private var warned: Set<String> = []

  init(total: Int, quiet: Bool = false) {
    self.total = total
    self.quiet = quiet
    files = total > 1 ? ProgressLine(total: total, unit: "files", quiet: quiet) : nil
  }

  /// For a batch of one file: a progress line for its `total` `unit`s
  /// (rows, pixels), which the job advances. Nil for several files, whose
  /// line counts files.
  func progress(total units: Int, unit: String) -> ProgressLine? {
    guard total == 1 else { return nil }
    let line = ProgressLine(total: units, unit: unit, quiet: quiet)
    lock.lock()
    inside = line
    lock.unlock()
    return line
  }

  /// Files run at once: one per core, at most one per file.
  var workers: Int { min(total, Parallel.coreCount) }
  /// The cores each of the `workers` jobs may use.
  var threadsPerJob: Int { max(1, Parallel.coreCount / max(workers, 1)) }

  /// Runs `job(index)` for every file; `threads` is what each job may use.
  /// Returns false if any job threw.
  func run(_ job: @escaping (_ index: Int, _ threads: Int) throws -> Void, describe: @escaping (Int) -> String) -> Bool {
    let (workers, threadsPerJob) = (self.workers, self.threadsPerJob)
    Parallel.run(workers) { worker in
      for index in stride(from: worker, to: self.total, by: workers) {
        do {
          try job(index, threadsPerJob)
          self.finish(failure: nil, file: describe(index))
        } catch {
          self.finish(failure: error, file: describe(index))
        }
      }
    }
    files?.clear()
    inside?.clear()
    if failed > 0 && total > 1 { Reporting.printError("error: \(failed) of \(total) files failed") }
    return failed == 0
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

  /// Adds a stage's time, in milliseconds.
  func record(_ stage: String, _ milliseconds: Double) {
    lock.lock()
    defer { lock.unlock() }
    if let i = timings.firstIndex(where: { $0.stage == stage }) {
      timings[i].milliseconds += milliseconds
    } else {
      timings.append((stage, milliseconds))
    }
  }

  /// `timing: <stage> <milliseconds>` lines on standard error, after the
  /// instruction set the kernels ran with (`kernels: avx2`).
  func printTimings() {
    Reporting.printError("kernels: \(InstructionSet.process)")
    for (stage, ms) in timings { Reporting.printError("timing: \(stage) \(String(format: "%.3f", ms))") }
  }

  private func finish(failure: Error?, file: String) {
    lock.lock()
    defer { lock.unlock() }
    if let failure {
      failed += 1
      files?.clear()
      inside?.clear()
      Reporting.fail(failure, file: file)
    }
    files?.advance()
  }
}

/// Times `body` and records it under `stage`.
func timed<T>(_ stage: String, in batch: Batch, _ body: () throws -> T) rethrows -> T {
  let clock = ContinuousClock()
  let start = clock.now
  defer {
    let elapsed = clock.now - start
    batch.record(stage, elapsed.milliseconds)
  }
  return try body()
}

/// `folder/<input's name without extension>`, plus `.ext` when given:
/// where a batch writes the output of one input.
func outputPath(in folder: String, for input: String, extension ext: String? = nil) -> String {
  let name = input.split(separator: "/").last.map(String.init) ?? input
  let stem = name.lastIndex(of: ".").map { String(name[..<$0]) } ?? name
  return OutputFolder.join(folder, stem + (ext.map { "." + $0 } ?? ""))
}

/// Refuses, before any work, a batch in which two inputs would write the
/// same output (`a.png` and `a.jpg` into one folder): status 1.
func ensureDistinct(outputs: [String], of inputs: [String]) throws {
  var writer: [String: String] = [:]
  for (output, input) in zip(outputs, inputs) {
    if let other = writer[output] {
      Reporting.printError("error: \(output): both \(other) and \(input) would write it; rename one or run them apart")
      throw ExitCode.fileFailed
    }
    writer[output] = input
  }
}

/// Expands folders to the files of the given kinds directly inside them,
/// sorted by name; a subfolder is named in a warning (it is not read), and
/// a folder with no such file is an error (status 1).
func expandInputs(_ paths: [String], kinds: Set<FileKind>) throws -> [String] {
  try paths.flatMap { path -> [String] in
    guard FileIO.isDirectory(path) else { return [path] }
    let names = try Reporting.orExit(file: path) { try FileIO.listFolder(path) }.filter { !$0.hasPrefix(".") }
    let files = names.filter { FileKind(path: $0).map(kinds.contains) ?? false }.map { OutputFolder.join(path, $0) }
    for name in names where FileIO.isDirectory(OutputFolder.join(path, name)) {
      Reporting.printError("warning: \(OutputFolder.join(path, name)): a subfolder; only files directly in \(path) are read")
    }
    guard !files.isEmpty else {
      let wanted = FileKind.allCases.filter(kinds.contains).map { $0 == .jpeg ? ".jpg, .jpeg" : "." + $0.rawValue }
        .joined(separator: ", ")
      Reporting.printError("error: \(path): no \(wanted) files in the folder")
      throw ExitCode.fileFailed
    }
    return files
  }
}
