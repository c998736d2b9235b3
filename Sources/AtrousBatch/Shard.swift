/// Why a shard could not be told.
public enum ShardError: Error, Equatable, CustomStringConvertible {
  /// `--shard` text that is not I/N with 0 <= I < N.
  case badSpec(String)
  /// An engine's variables that do not give a place (an array of ids that
  /// are not evenly spaced, an index past the count).
  case badEnvironment(String)
  /// JOB_COMPLETION_INDEX is set but the count is not known.
  case countNeeded(index: Int)

  public var description: String {
    switch self {
    case .badSpec(let text): "--shard must be I/N with 0 <= I < N, not '\(text)'"
    case .badEnvironment(let why): why
    case .countNeeded(let index):
      "JOB_COMPLETION_INDEX is \(index): give --shard-count N, the Job's completions, so the files can be split"
    }
  }
}

/// One task's part of a batch: the files at positions index, index + count,
/// index + 2 count... of the sorted input list, so `count` tasks with
/// indices 0..<count cover every file exactly once. Interleaving (rather
/// than contiguous ranges) spreads large and small files, and folders,
/// over the tasks.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
  public var index: Int
  public var count: Int
  /// Where it came from, for messages: "--shard", "SLURM_ARRAY_TASK_ID".
  public var source: String

  public static let whole = Shard(index: 0, count: 1, source: "the whole list")

  public init(index: Int, count: Int, source: String) {
    self.index = index
    self.count = count
    self.source = source
  }

  /// "I/N" as given to `--shard`.
  public static func parse(_ text: String) throws -> Shard {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]), count >= 1, (0..<count).contains(index) else {
      throw ShardError.badSpec(text)
    }
    return Shard(index: index, count: count, source: "--shard")
  }

  /// The shard a job engine gives this task, or nil outside one.
  ///
  /// - Slurm job arrays: SLURM_ARRAY_TASK_ID, placed by
  ///   SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_STEP (0 and 1 when unset),
  ///   counted by SLURM_ARRAY_TASK_COUNT, else by SLURM_ARRAY_TASK_MAX.
  ///   `--array=0-9`, `1-10` and `0-18:2` all give 10 shards. With `count`
  ///   given, the id is the shard's index itself, so a resubmission of some
  ///   ids (`--array=3,17` with `--shard-count 32`) redoes those shards.
  /// - Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX, with `count` (the
  ///   Job's completions, `--shard-count`), which it does not export.
  /// - Parameter count: `--shard-count`.
  public static func fromEnvironment(_ environment: [String: String], count: Int? = nil) throws -> Shard? {
    func number(_ name: String) throws -> Int? {
      guard let text = environment[name], !text.isEmpty else { return nil }
      guard let value = Int(text) else { throw ShardError.badEnvironment("\(name) is '\(text)', not a number") }
      return value
    }
    if let id = try number("SLURM_ARRAY_TASK_ID") {
      if let count {
        guard (0..<count).contains(id) else {
          throw ShardError.badEnvironment("SLURM_ARRAY_TASK_ID \(id) is not below --shard-count \(count)")
        }
        return Shard(index: id, count: count, source: "SLURM_ARRAY_TASK_ID")
      }
      let low = try number("SLURM_ARRAY_TASK_MIN") ?? 0, step = max(try number("SLURM_ARRAY_TASK_STEP") ?? 1, 1)
      var total = count
      if total == nil { total = try number("SLURM_ARRAY_TASK_COUNT") }
      if total == nil, let high = try number("SLURM_ARRAY_TASK_MAX") { total = (high - low) / step + 1 }
      guard let total else {
        throw ShardError.badEnvironment("SLURM_ARRAY_TASK_ID is \(id) but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX is set; give --shard I/N")
      }
      let offset = id - low
      guard offset >= 0, offset % step == 0, offset / step < total else {
        throw ShardError.badEnvironment("SLURM_ARRAY_TASK_ID \(id) is not one of \(total) evenly spaced ids from \(low) by \(step); "
                                          + "use --array=A-B[:S], or give --shard I/N")
      }
      return Shard(index: offset / step, count: total, source: "SLURM_ARRAY_TASK_ID")
    }
    if let index = try number("JOB_COMPLETION_INDEX") {
      guard let count else { throw ShardError.countNeeded(index: index) }
      guard (0..<count).contains(index) else {
        throw ShardError.badEnvironment("JOB_COMPLETION_INDEX \(index) is not below --shard-count \(count)")
      }
      return Shard(index: index, count: count, source: "JOB_COMPLETION_INDEX")
    }
    return nil
  }

  /// Positions of this shard's files in a list of `total`.
  public func positions(of total: Int) -> StrideTo<Int> { stride(from: index, to: total, by: count) }

  /// "2/4".
  public var description: String { "\(index)/\(count)" }
}
