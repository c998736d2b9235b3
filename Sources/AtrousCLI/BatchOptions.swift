import ArgumentParser
import AtrousBatch
import AtrousCore
import FoundationEssentials

/// The options of a batch into `--out-dir`: which files (folders,
/// patterns, lists), which of them this task takes (shards), what each
/// output is called, and what a rerun does.
struct BatchOptions: ParsableArguments {
  @Flag(help: "Read the subfolders of input folders too.")
  var recursive = false

  @Option(name: .customLong("file-list"), help: ArgumentHelp(
    "Also read the files listed in this file, one path per line ('-': standard input).", valueName: "file"))
  var fileList: String?

  @Option(help: ArgumentHelp(
    "Take every N-th file of the sorted list from the I-th (0-based). Default: from SLURM_ARRAY_TASK_ID, or JOB_COMPLETION_INDEX with --shard-count, else all.",
    valueName: "I/N"))
  var shard: String?

  @Option(name: .customLong("shard-count"), parsing: .unconditional, help: ArgumentHelp(
    "The number of shards when the index comes from the environment (a Kubernetes Job's completions).", valueName: "N"))
  var shardCount: Int?

  @Option(help: ArgumentHelp(
    "Output name in --out-dir: {stem}, {name}, {parent}, {index} of the input; '/' makes subfolders (default: {stem} and the output's extension).",
    valueName: "template"))
  var name: String?

  @Flag(help: "Make every output again, and replace the folder's manifests, even when made with other settings.")
  var overwrite = false

  @Flag(inversion: .prefixedNo, help: "Try again the files that failed in an earlier run into the same folder.")
  var retryFailed = true

  /// For `validate()`: each option well formed, and none given where the
  /// output is one file (`-o`).
  func check(singleOutput: Bool) throws {
    if let shard { _ = try Self.usage { try Shard.parse(shard) } }
    if let shardCount, shardCount < 1 { throw ValidationError("--shard-count must be at least 1") }
    if let name { _ = try Self.usage { try OutputName(name) } }
    if singleOutput {
      let given = [("--recursive", recursive), ("--file-list", fileList != nil), ("--shard", shard != nil),
                   ("--shard-count", shardCount != nil), ("--name", name != nil), ("--overwrite", overwrite),
                   ("--no-retry-failed", !retryFailed)].filter(\.1).map(\.0)
      if let first = given.first { throw ValidationError("\(first) is for batches into --out-dir, not -o") }
    }
  }

  /// The shard this task takes: `--shard`, else the job engine's, else all.
  func resolvedShard(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Shard {
    if let shard { return try Shard.parse(shard) }
    if let found = try Shard.fromEnvironment(environment, count: shardCount) { return found }
    if let shardCount {
      throw ShardError.badEnvironment("--shard-count \(shardCount): neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set "
                                        + "to say which shard this is; give --shard I/N")
    }
    return .whole
  }

  private static func usage<T>(_ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch {
      throw ValidationError(String(describing: error))
    }
  }
}
