import AtrousCore
import AtrousIO
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One task's run of a batch into an output folder: which of its shard's
/// files to make and which to skip, decided before any work, and the
/// manifest line written as each file ends.
///
/// - A file whose output is complete already is skipped (`--overwrite`
///   makes it again). Outputs are renamed into place whole, so one that
///   exists is complete; the command says which files make one
///   (`isComplete`).
/// - A file that failed before, by this shard's manifest, is tried
///   again unless `retryFailed` is false.
/// - Results of another fingerprint in the folder are refused, unless
///   `overwrite`, which also clears manifests of other shard counts and
///   starts this shard's anew.
///
/// Each line is appended with one `write` as its file ends, so a task
/// killed at any moment leaves every finished file's line (at worst a torn
/// last line, which readers skip).
public final class ShardRun: @unchecked Sendable {  // `fd` writes under `lock`
  public let folder: String
  public let shard: Shard
  public let fingerprint: String
  /// The whole batch's inputs, sorted, and each one's output name
  /// relative to `folder`.
  public let inputs: [String], names: [String]
  /// Positions (in `inputs`) this task makes, in order.
  public private(set) var pending: [Int] = []
  /// Positions it leaves, each with nil (complete already) or the earlier
  /// failure it does not retry.
  public private(set) var skipped: [(position: Int, reason: String?)] = []
  public let manifestPath: String

  private let fd: Int32
  private let lock = Lock()
  private let encoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
  }()

  /// - Parameter isComplete: whether the output of the file at a position
  ///   is all there.
  /// - Throws: `ManifestError`.
  public init(folder: String, shard: Shard, inputs: [String], names: [String], fingerprint: String, overwrite: Bool,
              retryFailed: Bool, isComplete: (Int) -> Bool) throws {
    self.folder = folder
    self.shard = shard
    self.fingerprint = fingerprint
    self.inputs = inputs
    self.names = names
    manifestPath = FileIO.join(folder, ManifestFolder.manifestName(shard))
    // This shard's own manifest in full (its earlier failures); of the
    // others, the first line, for the fingerprint.
    var lastFailure: [String: String] = [:]  // output name -> error
    if overwrite {
      try ManifestFolder.removeOtherCounts(in: folder, keeping: shard.count)
    } else {
      let own = try ManifestFolder.records(of: manifestPath)
      let others = try ManifestFolder.firstRecords(in: folder, except: ManifestFolder.manifestName(shard))
      for (file, record) in own.map({ (ManifestFolder.manifestName(shard), $0) }) + others where record.fingerprint != fingerprint {
        throw ManifestError.otherSettings(folder: folder, found: record.fingerprint, now: fingerprint, manifest: file)
      }
      for record in own { lastFailure[record.output] = record.status == .failed ? (record.error ?? "failed") : nil }
    }
    for position in shard.positions(of: inputs.count) {
      if !overwrite && isComplete(position) {
        skipped.append((position, nil))
      } else if !overwrite && !retryFailed, let failure = lastFailure[names[position]] {
        skipped.append((position, "failed before (--retry-failed tries again): \(failure)"))
      } else {
        pending.append(position)
      }
    }
    let plan = ShardPlan(shard: shard.index, shards: shard.count, total: inputs.count, fingerprint: fingerprint,
                         inputs: shard.positions(of: inputs.count).map { inputs[$0] },
                         outputs: shard.positions(of: inputs.count).map { names[$0] })
    let planPath = FileIO.join(folder, ManifestFolder.planName(shard))
    do {
      try AtomicFileWriter.write(Array(try encoder.encode(plan)) + [0x0A], to: planPath)
    } catch let error as FileError {
      throw ManifestError.cannotWrite(path: planPath, reason: error.cause)
    }
    fd = open(manifestPath, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | (overwrite ? O_TRUNC : 0), 0o666)
    guard fd >= 0 else { throw ManifestError.cannotWrite(path: manifestPath, reason: String(cString: strerror(errno))) }
    // A line torn by a killed task: end it, so the next starts clean.
    var status = stat(), last: UInt8 = 0x0A
    if fstat(fd, &status) == 0, status.st_size > 0, pread(fd, &last, 1, status.st_size - 1) == 1, last != 0x0A {
      try append([0x0A])
    }
  }

  deinit { close(fd) }

  /// Appends the skipped files' lines.
  public func recordSkips() throws {
    for (position, reason) in skipped {
      try record(position: position, status: .skipped, error: reason, ms: [:])
    }
  }

  /// Appends the line of the file at `position`: done when `error` is nil.
  public func finish(position: Int, error: String?, ms: [String: Double]) throws {
    try record(position: position, status: error == nil ? .done : .failed, error: error, ms: ms)
  }

  private func record(position: Int, status: ManifestRecord.Status, error: String?, ms: [String: Double]) throws {
    var info = stat()
    let known = stat(inputs[position], &info) == 0
    let record = ManifestRecord(
      input: inputs[position], output: names[position], status: status, error: error,
      bytes: known ? Int(info.st_size) : nil,
      mtime: known ? Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9 : nil,
      fingerprint: fingerprint, ms: ms.mapValues { ($0 * 1000).rounded() / 1000 }, end: Date().timeIntervalSince1970)
    try append(Array(try encoder.encode(record)) + [0x0A])
  }

  private func append(_ bytes: [UInt8]) throws {
    lock.lock()
    defer { lock.unlock() }
    let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else {
      throw ManifestError.cannotWrite(path: manifestPath, reason: written < 0 ? String(cString: strerror(errno)) : "short write")
    }
  }
}
