import AtrousIO

/// What the manifests of an output folder say, over every shard: files
/// done, failed (with reasons), missing, and throughput.
public struct ManifestSummary: Sendable, Equatable {
  /// Files in the batch, by the shard plans (nil when there is none).
  public var total: Int?
  /// The shard count and the shards whose plan is missing (never started).
  public var shards: Int?
  public var shardsNotStarted: [Int]
  /// Inputs whose output is there: made by some run, or found complete.
  public var done: Int
  /// Inputs whose latest attempt failed, with the reason, sorted by input.
  public var failed: [(input: String, error: String)]
  /// Files planned (or counted in `total`) with no line yet.
  public var missing: Int
  /// Lines of files made (status done): their count, the seconds from the
  /// first start to the last end, and the milliseconds per stage summed.
  public var made: Int
  public var seconds: Double
  public var stageMilliseconds: [String: Double]
  public var fingerprints: [String]

  /// Files made per second of wall time, over all tasks.
  public var filesPerSecond: Double { seconds > 0 ? Double(made) / seconds : 0 }

  public static func == (a: Self, b: Self) -> Bool {
    a.total == b.total && a.shards == b.shards && a.shardsNotStarted == b.shardsNotStarted && a.done == b.done
      && a.failed.map(\.input) == b.failed.map(\.input) && a.failed.map(\.error) == b.failed.map(\.error)
      && a.missing == b.missing && a.made == b.made && a.seconds == b.seconds
      && a.stageMilliseconds == b.stageMilliseconds && a.fingerprints == b.fingerprints
  }

  /// The summary of `folder`.
  /// - Throws: `ManifestError.noManifest` when the folder has none.
  public init(folder: String) throws {
    guard FileIO.isDirectory(folder) else {
      throw ManifestError.cannotRead(path: folder, reason: FileIO.exists(folder) ? "not a folder" : "no such folder")
    }
    let files = try ManifestFolder.records(in: folder)
    let plans = try ManifestFolder.plans(in: folder)
    guard !files.isEmpty || !plans.isEmpty else { throw ManifestError.noManifest(folder: folder) }
    self.init(records: files.flatMap(\.records), plans: plans)
  }

  /// Plans of the latest shard count count; records are matched to inputs
  /// by output name, the latest line of each winning.
  public init(records: [ManifestRecord], plans: [ShardPlan]) {
    let count = plans.map(\.shards).max()
    let current = plans.filter { $0.shards == count }
    shards = count
    total = current.map(\.total).max()
    shardsNotStarted = count.map { n in (0..<n).filter { i in !current.contains { $0.shard == i } } } ?? []
    var latest: [String: ManifestRecord] = [:]
    for record in records.sorted(by: { $0.end < $1.end }) { latest[record.output] = record }
    done = latest.values.filter { $0.status == .done || ($0.status == .skipped && $0.error == nil) }.count
    failed = latest.values.filter { $0.status == .failed || ($0.status == .skipped && $0.error != nil) }
      .map { ($0.input, $0.error ?? "failed") }.sorted { $0.input.utf8.lexicographicallyPrecedes($1.input.utf8) }
    let planned = Set(current.flatMap(\.outputs))
    let unplannedStarts = max(0, (total ?? 0) - current.reduce(0) { $0 + $1.outputs.count })
    missing = planned.filter { latest[$0] == nil }.count + unplannedStarts
    let made = records.filter { $0.status == .done }
    self.made = made.count
    let starts = made.map { $0.end - $0.ms.values.reduce(0, +) / 1000 }
    seconds = made.isEmpty ? 0 : made.map(\.end).max()! - starts.min()!
    stageMilliseconds = made.reduce(into: [:]) { sums, record in
      for (stage, ms) in record.ms { sums[stage, default: 0] += ms }
    }
    fingerprints = Array(Set(records.map(\.fingerprint))).sorted()
  }

  /// Whether every file of the batch is done.
  public var isComplete: Bool { failed.isEmpty && missing == 0 && shardsNotStarted.isEmpty }
}
