import ArgumentParser
import AtrousCore
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `--quiet`, for the commands that show progress.
struct ProgressOptions: ParsableArguments {
  @Flag(help: "No progress line (it shows only on a terminal, for jobs over \(ProgressLine.defaultDelay) s).")
  var quiet = false
}

/// The progress of a long job on one line of standard error: units done of
/// the total, a bar, the rate and the time left, redrawn at most ten times
/// a second. Silent when standard error is not a terminal, under --quiet,
/// and until the job has run `delay` seconds (ATROUS_PROGRESS_AFTER, 2 by
/// default), so short jobs print nothing. Safe to advance from any thread.
final class ProgressLine: @unchecked Sendable {
  static let defaultDelay = 2.0

  private let lock = Lock()
  private let total: Int
  private let unit: String
  private let enabled: Bool
  private let delay: Double
  private let start = ContinuousClock.now
  private var done = 0, failed = 0
  private var lastDraw: ContinuousClock.Instant? = nil
  private var shown = false

  /// - Parameter unit: what is counted, plural ("files", "rows").
  init(total: Int, unit: String, quiet: Bool) {
    self.total = max(total, 1)
    self.unit = unit
    enabled = !quiet && isatty(STDERR_FILENO) == 1
    delay = ProcessInfo.processInfo.environment["ATROUS_PROGRESS_AFTER"].flatMap(Double.init) ?? Self.defaultDelay
  }

  /// Counts `units` more as done (`failed`: a file that failed, counted
  /// apart too), and redraws when it is time to.
  func advance(by units: Int = 1, failed failure: Bool = false) {
    guard enabled else { return }
    lock.lock()
    defer { lock.unlock() }
    done += units
    if failure { failed += units }
    let now = ContinuousClock.now
    let elapsed = (now - start).milliseconds / 1000
    guard elapsed >= delay, lastDraw.map({ (now - $0).milliseconds >= 100 }) ?? true else { return }
    lastDraw = now
    shown = true
    Reporting.printError("\r\u{1B}[K" + Self.line(done: done, total: total, unit: unit, elapsed: elapsed, failed: failed), newline: false)
  }

  /// Erases the line (before another message, and at the end).
  func clear() {
    lock.lock()
    defer { lock.unlock() }
    if shown { Reporting.printError("\r\u{1B}[K", newline: false) }
    shown = false
  }

  /// `[#####---------] 3/10 files (1 failed), 1.5 files/s, 5 s left`.
  static func line(done: Int, total: Int, unit: String, elapsed: Double, failed: Int = 0) -> String {
    let width = 20, filled = width * min(done, total) / total
    let rate = Double(done) / max(elapsed, 1e-9)
    let left = rate > 0 ? Double(total - done) / rate : 0
    return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
      + "\(count(done))/\(count(total)) \(unit)\(failed > 0 ? " (\(count(failed)) failed)" : ""), \(count(rate)) \(unit)/s, \(Int(left.rounded(.up))) s left"
  }

  /// 950, 12.3k, 4.1M.
  static func count(_ value: some BinaryInteger) -> String { count(Double(value)) }

  static func count(_ value: Double) -> String {
    if value >= 1e6 { return String(printf: "%.1fM", value / 1e6) }
    if value >= 1e4 { return String(printf: "%.1fk", value / 1e3) }
    return value == value.rounded() || value >= 100 ? String(Int(value.rounded())) : String(printf: "%.1f", value)
  }
}
