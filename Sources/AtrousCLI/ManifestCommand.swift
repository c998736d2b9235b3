import ArgumentParser
import AtrousBatch
import FoundationEssentials

struct ManifestCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "manifest",
    abstract: "Sum up a batch's output folder over all its shards: done, failed (with reasons), missing, throughput.",
    discussion: """
      Reads OUT/manifest-<I>-of-<N>.jsonl (one line per file as it ended)
      and OUT/shard-<I>-of-<N>.json (each shard's files), as written by
      'hypercolumns', 'filter' and 'features' with --out-dir. A file counts
      by its latest line; shards never started count as missing.

      Exit status: 0 when every file of the batch is done, 1 otherwise (or
      when the folder has no manifest), so a script can wait on it.

      EXAMPLES
        atrous manifest columns/
        atrous manifest columns/ --json
      """
  )

  @Argument(help: ArgumentHelp("The batch's output folder (--out-dir).", valueName: "folder"))
  var folder: String

  @Flag(help: "Print the summary as one JSON object.")
  var json = false

  func run() throws {
    let summary = try Reporting.orExit(file: folder) { try ManifestSummary(folder: folder) }
    print(json ? Self.json(summary) : Self.text(summary, folder: folder), terminator: "")
    if !summary.isComplete { throw ExitCode.fileFailed }
  }

  static func text(_ s: ManifestSummary, folder: String) -> String {
    var lines: [String] = []
    let shards = s.shards.map { "\($0) shard\($0 == 1 ? "" : "s")" } ?? "no shard plan"
    lines.append("\(folder): \(s.total.map { "\($0) files" } ?? "files unknown"), \(shards)")
    lines.append("  done     \(s.done)")
    lines.append("  failed   \(s.failed.count)")
    for (input, error) in s.failed { lines.append("    \(input): \(error)") }
    lines.append("  missing  \(s.missing)")
    if !s.shardsNotStarted.isEmpty {
      lines.append("    shards not started: \(s.shardsNotStarted.map(String.init).joined(separator: ", "))")
    }
    if s.made > 0 {
      let stages = s.stageMilliseconds.sorted { $0.key < $1.key }
        .map { "\($0.key) \(String(printf: "%.0f", $0.value / Double(s.made))) ms" }.joined(separator: ", ")
      lines.append(String(printf: "made %ld files in %.1f s of wall time, %.2f files/s", s.made, s.seconds, s.filesPerSecond)
                     + (stages.isEmpty ? "" : "; per file: " + stages))
    }
    if s.fingerprints.count > 1 { lines.append("warning: lines of \(s.fingerprints.count) fingerprints: \(s.fingerprints.joined(separator: ", "))") }
    return lines.joined(separator: "\n") + "\n"
  }

  static func json(_ s: ManifestSummary) -> String {
    struct Out: Encodable {
      var total: Int?, shards: Int?, shardsNotStarted: [Int], done: Int, failed: [[String: String]], missing: Int
      var made: Int, seconds: Double, filesPerSecond: Double, msPerStage: [String: Double], fingerprints: [String], complete: Bool
      enum CodingKeys: String, CodingKey {
        case total, shards, done, failed, missing, made, seconds, fingerprints, complete
        case shardsNotStarted = "shards_not_started", filesPerSecond = "files_per_second", msPerStage = "ms_per_stage"
      }
    }
    let out = Out(total: s.total, shards: s.shards, shardsNotStarted: s.shardsNotStarted, done: s.done,
                  failed: s.failed.map { ["input": $0.input, "error": $0.error] }, missing: s.missing, made: s.made,
                  seconds: s.seconds, filesPerSecond: s.filesPerSecond, msPerStage: s.stageMilliseconds,
                  fingerprints: s.fingerprints, complete: s.isComplete)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: (try? encoder.encode(out)) ?? Data(), as: UTF8.self) + "\n"
  }
}
