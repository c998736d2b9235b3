import AtrousIO
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The files a sharded batch keeps beside its outputs, and reading them
/// back: `manifest-<I>-of-<N>.jsonl` (a line per input that ended) and
/// `shard-<I>-of-<N>.json` (the shard's plan: its inputs, and the whole
/// batch's count, so a summary can tell what is missing).
public enum ManifestFolder {
  public static func manifestName(_ shard: Shard) -> String { "manifest-\(shard.index)-of-\(shard.count).jsonl" }
  public static func planName(_ shard: Shard) -> String { "shard-\(shard.index)-of-\(shard.count).json" }

  /// Whether `name` (relative to the folder) is one of these files, which
  /// no output may take.
  public static func isReserved(_ name: String) -> Bool { parse(name) != nil }

  /// (kind, index, count) of `manifest-I-of-N.jsonl` or `shard-I-of-N.json`.
  static func parse(_ name: String) -> (kind: String, shard: Shard)? {
    for (kind, suffix) in [("manifest", ".jsonl"), ("shard", ".json")] where name.hasPrefix(kind + "-") && name.hasSuffix(suffix) {
      let middle = name.dropFirst(kind.count + 1).dropLast(suffix.count)
      let parts = middle.split(separator: "-", omittingEmptySubsequences: false)
      guard parts.count == 3, parts[1] == "of", let i = Int(parts[0]), let n = Int(parts[2]), n >= 1, (0..<n).contains(i) else { continue }
      return (kind, Shard(index: i, count: n, source: name))
    }
    return nil
  }

  /// Every record of every manifest in `folder`, file by file, each file's
  /// in the order written. A line that does not parse (the torn end of a
  /// task killed mid-write) is skipped.
  public static func records(in folder: String) throws -> [(name: String, shard: Shard, records: [ManifestRecord])] {
    try names(in: folder, kind: "manifest").map { name, shard in (name, shard, try records(of: FileIO.join(folder, name))) }
  }

  /// The first record of each manifest in `folder` but `except`'s, read
  /// from the file's first 64 KiB: what a task checks of its siblings'
  /// manifests (every line of one manifest has one fingerprint, as a run
  /// with another is refused or, with `--overwrite`, starts it anew), so a
  /// million lines are not read by every task.
  public static func firstRecords(in folder: String, except: String) throws -> [(name: String, record: ManifestRecord)] {
    try names(in: folder, kind: "manifest").compactMap { name, _ in
      guard name != except, let first = try decode(FileIO.join(folder, name), prefix: 65536).first else { return nil }
      return (name, first)
    }
  }

  /// The records of one manifest, in the order written; none when it does
  /// not exist.
  public static func records(of path: String) throws -> [ManifestRecord] {
    FileIO.exists(path) ? try decode(path, prefix: nil) : []
  }

  /// The records of a manifest's lines, or of its first `prefix` bytes'.
  /// A line that does not parse (the torn end of a task killed mid-write)
  /// is skipped.
  private static func decode(_ path: String, prefix: Int?) throws -> [ManifestRecord] {
    let bytes: [UInt8]
    do {
      bytes = try prefix.map { try FileIO.readPrefix(path, count: $0) } ?? FileIO.readAll(path)
    } catch let error as FileError {
      throw ManifestError.cannotRead(path: path, reason: error.cause)
    }
    let decoder = JSONDecoder()
    return bytes.split(separator: 0x0A).compactMap { try? decoder.decode(ManifestRecord.self, from: Data($0)) }
  }

  /// Every shard plan in `folder`.
  public static func plans(in folder: String) throws -> [ShardPlan] {
    try names(in: folder, kind: "shard").compactMap { name, _ in
      guard let bytes = try? FileIO.readAll(FileIO.join(folder, name)) else { return nil }
      return try? JSONDecoder().decode(ShardPlan.self, from: Data(bytes))
    }
  }

  /// Removes the manifests and plans of shard counts other than `count`:
  /// what a batch split another way left (`--overwrite`). Those of this
  /// count belong to sibling tasks, which replace their own.
  public static func removeOtherCounts(in folder: String, keeping count: Int) throws {
    for kind in ["manifest", "shard"] {
      for (name, shard) in try names(in: folder, kind: kind) where shard.count != count {
        unlink(FileIO.join(folder, name))
      }
    }
  }

  static func names(in folder: String, kind: String) throws -> [(String, Shard)] {
    guard FileIO.isDirectory(folder) else { return [] }
    let all: [String]
    do {
      all = try FileIO.listFolder(folder)
    } catch let error as FileError {
      throw ManifestError.cannotRead(path: folder, reason: error.cause)
    }
    return all.compactMap { name in parse(name).flatMap { $0.kind == kind ? (name, $0.shard) : nil } }
  }

}

/// `shard-<I>-of-<N>.json`: what one task was given.
public struct ShardPlan: Codable, Sendable, Equatable {
  public var shard: Int
  public var shards: Int
  /// Files in the whole batch, every shard's.
  public var total: Int
  public var fingerprint: String
  public var inputs: [String]
  /// Output names relative to the folder, one per input.
  public var outputs: [String]

  public init(shard: Int, shards: Int, total: Int, fingerprint: String, inputs: [String], outputs: [String]) {
    self.shard = shard
    self.shards = shards
    self.total = total
    self.fingerprint = fingerprint
    self.inputs = inputs
    self.outputs = outputs
  }
}
