import AtrousIO
import AtrousTestSupport
import Foundation
import Testing

/// Batches into `--out-dir` as a cluster runs them: shards that cover the
/// list once, reruns that skip what is done, manifests that say what
/// happened, refusals before any work. Each runs the real binary.
@Suite struct BatchCommandTests {
  static let gray = "Tests/Fixtures/hypercolumns/gray.png"
  static let color = "Tests/Fixtures/hypercolumns/input.png"

  /// A folder of `good` images (alternately gray and colour) and one
  /// corrupt file, `bad.png`, sorted among them.
  static func inputs(good: Int) throws -> (folder: String, good: [String]) {
    let folder = Fixtures.scratchFolder()
    let bytes = [try FileIO.readAll(gray), try FileIO.readAll(color)]
    var names: [String] = []
    for k in 0..<good {
      let name = String(format: "img%02d.png", k)
      try AtomicFileWriter.write(bytes[k % 2], to: folder + "/" + name)
      names.append(name)
    }
    try AtomicFileWriter.write(Array(bytes[0].prefix(60)), to: folder + "/bad.png")
    return (folder, names)
  }

  static func lines(_ path: String) throws -> [[String: Any]] {
    try FileIO.readAll(path).split(separator: 0x0A).map {
      try JSONSerialization.jsonObject(with: Data($0)) as! [String: Any]
    }
  }

  static func modified(_ path: String) throws -> Date {
    try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as! Date
  }

  /// Three shards write every good file exactly once; only the shard with
  /// the corrupt file fails, and its manifest says why. Run again, every
  /// shard skips everything and writes nothing.
  @Test func shardsCoverTheListOnceAndRerunsSkip() throws {
    let (inputs, good) = try Self.inputs(good: 8)
    let out = Fixtures.scratchFolder() + "/out"
    let command = ["filter", inputs, "--out-dir", out, "--format", "npy", "sobel:mag"]
    var statuses: [Int32] = []
    for shard in 0..<3 { statuses.append(try CLIRunner.run(command + ["--shard", "\(shard)/3"]).status) }
    // Sorted: bad.png, img00..img07; bad.png is position 0, shard 0's.
    #expect(statuses == [1, 0, 0])
    let outputs = good.map { out + "/" + $0.dropLast(4) + ".npy" }
    #expect(Fixtures.listing(out).filter { $0.hasSuffix(".npy") } == outputs.map { String($0.split(separator: "/").last!) })
    for (name, output) in zip(good, outputs) {
      let alone = try CLIRunner.run("filter", inputs + "/" + name, "-o", out + "-alone.npy", "sobel:mag")
      #expect(alone.status == 0)
      #expect(try FileIO.readAll(output) == FileIO.readAll(out + "-alone.npy"), "\(name)")
    }
    var records: [[String: Any]] = []
    for shard in 0..<3 { records += try Self.lines(out + "/manifest-\(shard)-of-3.jsonl") }
    #expect(records.count == 9)
    let failed = records.filter { $0["status"] as? String == "failed" }
    #expect(failed.count == 1 && failed[0]["input"] as? String == inputs + "/bad.png" && failed[0]["output"] as? String == "bad.npy")
    #expect((failed[0]["error"] as? String)?.contains("PNG") == true, "\(failed)")
    let done = records.filter { $0["status"] as? String == "done" }
    #expect(Set(done.compactMap { $0["input"] as? String }) == Set(good.map { inputs + "/" + $0 }))
    for record in done {
      #expect(record["bytes"] as? Int == (try? FileIO.readAll(record["input"] as! String).count))
      #expect((record["ms"] as? [String: Double]).map { Set($0.keys) } == ["read", "filter", "write"])
      #expect(record["fingerprint"] as? String == done[0]["fingerprint"] as? String)
      #expect(record.keys.contains("error") && record["error"] is NSNull)
    }

    let before = try outputs.map(Self.modified)
    for shard in 0..<3 {
      let again = try CLIRunner.run(command + ["--shard", "\(shard)/3"])
      #expect(again.status == (shard == 0 ? 1 : 0), "\(again.stderr)")
      #expect(again.stderr.contains("skipped 3 of 3 files") == (shard != 0), "\(again.stderr)")
    }
    #expect(try outputs.map(Self.modified) == before)
    let second = try Self.lines(out + "/manifest-1-of-3.jsonl").suffix(3)
    #expect(second.allSatisfy { $0["status"] as? String == "skipped" && $0["error"] is NSNull })

    let summary = try CLIRunner.run("manifest", out)
    #expect(summary.status == 1)
    #expect(summary.stdout.contains("9 files, 3 shards") && summary.stdout.contains("done     8")
              && summary.stdout.contains("failed   1") && summary.stdout.contains("missing  0"), "\(summary.stdout)")
    #expect(summary.stdout.contains("\(inputs)/bad.png: "), "\(summary.stdout)")
  }

  /// A failed file is tried again by default, left with its reason under
  /// --no-retry-failed; a shard never started counts as missing.
  @Test func failedFilesAreRetriedUnlessAsked() throws {
    let (inputs, _) = try Self.inputs(good: 2)
    let out = Fixtures.scratchFolder()
    let command = ["filter", inputs, "--out-dir", out, "--format", "npy", "sobel:mag"]
    #expect(try CLIRunner.run(command).status == 1)
    try FileManager.default.removeItem(atPath: inputs + "/bad.png")
    try FileManager.default.copyItem(atPath: Self.gray, toPath: inputs + "/bad.png")
    let left = try CLIRunner.run(command + ["--no-retry-failed"])
    #expect(left.status == 0, "\(left.stderr)")
    #expect(left.stderr.contains("skipped 1 files that failed before"), "\(left.stderr)")
    #expect(!FileIO.exists(out + "/bad.npy"))
    #expect(try CLIRunner.run("manifest", out).status == 1)
    let retried = try CLIRunner.run(command)
    #expect(retried.status == 0, "\(retried.stderr)")
    #expect(FileIO.exists(out + "/bad.npy"))
    let summary = try CLIRunner.run("manifest", out, "--json")
    #expect(summary.status == 0, "\(summary.stdout)")
    let json = try JSONSerialization.jsonObject(with: Data(summary.stdout.utf8)) as! [String: Any]
    #expect(json["done"] as? Int == 3 && json["missing"] as? Int == 0 && json["complete"] as? Bool == true, "\(json)")

    // Shard 1 of 2 never runs: its files are missing.
    let split = Fixtures.scratchFolder()
    #expect(try CLIRunner.run(["filter", inputs, "--out-dir", split, "--format", "npy", "sobel:mag", "--shard", "0/2"]).status == 0)
    let partial = try CLIRunner.run("manifest", split)
    #expect(partial.status == 1)
    #expect(partial.stdout.contains("missing  1") && partial.stdout.contains("shards not started: 1"), "\(partial.stdout)")
    let none = try CLIRunner.run("manifest", split + "/none")
    #expect(none.status == 1 && none.stderr == "error: \(split)/none: cannot read: no such folder\n", "\(none.stderr)")
    let empty = try CLIRunner.run("manifest", Fixtures.scratchFolder())
    #expect(empty.status == 1 && empty.stderr.hasSuffix(": no manifest-<I>-of-<N>.jsonl in the folder\n"), "\(empty.stderr)")
  }

  /// Other settings into the same folder are refused before any work;
  /// --overwrite makes everything again and starts the manifest anew.
  @Test func otherSettingsAreRefusedUnlessOverwritten() throws {
    let (inputs, _) = try Self.inputs(good: 2)
    try FileManager.default.removeItem(atPath: inputs + "/bad.png")
    let out = Fixtures.scratchFolder()
    let first = ["filter", inputs, "--out-dir", out, "--format", "npy", "sobel:mag"]
    #expect(try CLIRunner.run(first).status == 0)
    let before = try FileIO.readAll(out + "/img00.npy")
    let other = ["filter", inputs, "--out-dir", out, "--format", "npy", "gaussian:sigma=2"]
    let refused = try CLIRunner.run(other)
    #expect(refused.status == 1)
    #expect(refused.stderr.hasPrefix("error: \(out): holds results of another model or other settings (fingerprint sha256:"),
            "\(refused.stderr)")
    #expect(try FileIO.readAll(out + "/img00.npy") == before)
    // Threads and shards change no number: the same fingerprint.
    #expect(try CLIRunner.run(first + ["--threads", "1", "--shard", "0/1"]).status == 0)
    let replaced = try CLIRunner.run(other + ["--overwrite"])
    #expect(replaced.status == 0, "\(replaced.stderr)")
    #expect(try FileIO.readAll(out + "/img00.npy") != before)
    let records = try Self.lines(out + "/manifest-0-of-1.jsonl")
    #expect(records.count == 2 && records.allSatisfy { $0["status"] as? String == "done" })
    #expect(try CLIRunner.run(other).status == 0)
  }

  /// Lists, patterns and name templates: the order is the sorted one, the
  /// names follow the fields, and two inputs naming one output are
  /// refused before anything is written.
  @Test func listsPatternsAndNames() throws {
    let root = Fixtures.scratchFolder()
    for folder in ["cats", "dogs"] {
      try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: false)
      try FileManager.default.copyItem(atPath: Self.gray, toPath: root + "/\(folder)/x.png")
    }
    try AtomicFileWriter.write(Array("\(root)/dogs/x.png\n\(root)/cats/x.png\n".utf8), to: root + "/list.txt")
    let out = Fixtures.scratchFolder()
    let clash = try CLIRunner.run("filter", "--file-list", root + "/list.txt", "--out-dir", out + "/a", "sobel:mag")
    #expect(clash.status == 1)
    #expect(clash.stderr.contains("error: \(out)/a/x.png: both \(root)/cats/x.png and \(root)/dogs/x.png would write it"),
            "\(clash.stderr)")
    #expect(!FileIO.exists(out + "/a"))
    let named = try CLIRunner.run("filter", "--file-list", root + "/list.txt", "--out-dir", out + "/b",
                                  "--name", "{parent}/{index}-{stem}.png", "sobel:mag")
    #expect(named.status == 0, "\(named.stderr)")
    #expect(Fixtures.listing(out + "/b", recursive: true).filter { $0.hasSuffix(".png") } == ["cats/0-x.png", "dogs/1-x.png"])
    let pattern = try CLIRunner.run("filter", root + "/*/x.png", "--out-dir", out + "/c", "--name", "{parent}.png", "sobel:mag")
    #expect(pattern.status == 0, "\(pattern.stderr)")
    #expect(Fixtures.listing(out + "/c").filter { $0.hasSuffix(".png") } == ["cats.png", "dogs.png"])
    let recursive = try CLIRunner.run("filter", root, "--recursive", "--out-dir", out + "/d", "--name", "{parent}-{name}",
                                      "sobel:mag")
    #expect(recursive.status == 0, "\(recursive.stderr)")
    #expect(Fixtures.listing(out + "/d").filter { $0.hasSuffix(".png") } == ["cats-x.png", "dogs-x.png"])
    let usage = try CLIRunner.run("filter", Self.gray, "-o", out + "/e.png", "--shard", "0/2", "sobel:mag")
    #expect(usage.status == 64 && usage.stderr.contains("--shard is for batches into --out-dir, not -o"), "\(usage.stderr)")
  }

  /// Without --shard, the shard comes from a Slurm array task's variables
  /// or a Kubernetes Indexed Job's index with --shard-count; the tasks
  /// together cover the list once, and a task with no file succeeds.
  @Test func shardsFromTheEnvironment() throws {
    let (inputs, good) = try Self.inputs(good: 3)
    try FileManager.default.removeItem(atPath: inputs + "/bad.png")
    let slurm = Fixtures.scratchFolder(), kube = Fixtures.scratchFolder()
    for id in 1...4 {  // --array=1-4: four tasks for three files
      let result = try CLIRunner.run(["filter", inputs, "--out-dir", slurm, "--format", "npy", "sobel:mag"], environment: [
        "SLURM_ARRAY_TASK_ID": "\(id)", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "4", "SLURM_ARRAY_TASK_COUNT": "4",
      ])
      #expect(result.status == 0, "\(result.stderr)")
      #expect(FileIO.exists(slurm + "/manifest-\(id - 1)-of-4.jsonl"))
    }
    #expect(Fixtures.listing(slurm).filter { $0.hasSuffix(".npy") } == good.map { $0.dropLast(4) + ".npy" })
    for index in 0..<2 {
      let result = try CLIRunner.run(["filter", inputs, "--out-dir", kube, "--format", "npy", "--shard-count", "2", "sobel:mag"],
                                     environment: ["JOB_COMPLETION_INDEX": "\(index)"])
      #expect(result.status == 0, "\(result.stderr)")
    }
    #expect(Fixtures.listing(kube).filter { $0.hasSuffix(".npy") }.count == 3)
    let missing = try CLIRunner.run(["filter", inputs, "--out-dir", kube, "sobel:mag"], environment: ["JOB_COMPLETION_INDEX": "0"])
    #expect(missing.status == 1 && missing.stderr.contains("give --shard-count N"), "\(missing.stderr)")
  }

  /// In a log, a line per file; a manifest line torn by a killed task is
  /// ended and skipped, and the rerun goes on.
  @Test func logLinesAndTornManifests() throws {
    let (inputs, _) = try Self.inputs(good: 3)
    let out = Fixtures.scratchFolder()
    let run = try CLIRunner.run("hypercolumns", inputs, "--out-dir", out, "--layers", "sigma1.0")
    #expect(run.status == 1)
    let logged = run.stderr.split(separator: "\n").filter { $0.hasPrefix("[") }
    #expect(logged.count == 4 && logged.filter { $0.contains("] done \(inputs)/img") }.count == 3, "\(run.stderr)")
    #expect(logged.contains { $0.hasSuffix("] failed \(inputs)/bad.png") }, "\(run.stderr)")
    let quiet = try CLIRunner.run("hypercolumns", inputs, "--out-dir", Fixtures.scratchFolder(), "--layers", "sigma1.0", "--quiet")
    #expect(!quiet.stderr.contains("] done"))

    let manifest = out + "/manifest-0-of-1.jsonl"
    var bytes = try FileIO.readAll(manifest)
    bytes += Array("{\"input\": \"torn".utf8)
    try AtomicFileWriter.write(bytes, to: manifest)
    try FileManager.default.removeItem(atPath: out + "/img01.npy")
    let again = try CLIRunner.run("hypercolumns", inputs, "--out-dir", out, "--layers", "sigma1.0", "--no-retry-failed")
    #expect(again.status == 0, "\(again.stderr)")
    #expect(FileIO.exists(out + "/img01.npy"))
    let text = String(decoding: try FileIO.readAll(manifest), as: UTF8.self)
    #expect(text.contains("\"torn\n{"))
    let summary = try CLIRunner.run("manifest", out, "--json")
    let json = try JSONSerialization.jsonObject(with: Data(summary.stdout.utf8)) as! [String: Any]
    #expect(json["done"] as? Int == 3 && (json["failed"] as? [Any])?.count == 1, "\(json)")
  }

  /// Files at once times threads each stays within --threads, and by
  /// default within the CPUs the process may use (its affinity mask, as a
  /// scheduler's CPU set gives it), not the machine's.
  @Test func threadsStayWithinTheCPUSetAndTheCap() throws {
    let (inputs, _) = try Self.inputs(good: 3)
    func threads(_ arguments: [String], cpus: String? = nil) throws -> String {
      let result = try CLIRunner.run(arguments + ["--timings"], wrapper: cpus.map { ["/usr/bin/taskset", "-c", $0] } ?? [])
      return result.stderr.split(separator: "\n").first { $0.hasPrefix("threads: ") }.map(String.init) ?? ""
    }
    let batch = ["filter", inputs, "--out-dir", Fixtures.scratchFolder(), "--overwrite", "sobel:mag"]
    #expect(try threads(batch, cpus: "0") == "threads: 1 file at once x 1 thread each")
    #expect(try threads(batch + ["--threads", "3"], cpus: "0") == "threads: 3 files at once x 1 thread each")
    #expect(try threads(batch + ["--threads", "2"]) == "threads: 2 files at once x 1 thread each")
    #expect(try threads(batch + ["--threads", "8"]) == "threads: 4 files at once x 2 threads each")
    let one = ["filter", Self.gray, "-o", Fixtures.scratchFolder() + "/a.png", "sobel:mag"]
    #expect(try threads(one + ["--threads", "3"]) == "threads: 1 file at once x 3 threads each")
    if ProcessInfo.processInfo.activeProcessorCount >= 2 {
      #expect(try threads(one, cpus: "0,1") == "threads: 1 file at once x 2 threads each")
    }
  }

  /// `--file-list -` reads the paths from standard input, as `find ... |`
  /// gives them.
  @Test func fileListFromStandardInput() throws {
    let (inputs, good) = try Self.inputs(good: 2)
    let out = Fixtures.scratchFolder()
    let listed = good.reversed().map { inputs + "/" + $0 + "\n" }.joined()
    let result = try CLIRunner.run(["filter", "--file-list", "-", "--out-dir", out, "--format", "npy", "sobel:mag"],
                                   input: Data(listed.utf8))
    #expect(result.status == 0, "\(result.stderr)")
    #expect(Fixtures.listing(out).filter { $0.hasSuffix(".npy") } == ["img00.npy", "img01.npy"])
    let plan = try JSONSerialization.jsonObject(with: Data(try FileIO.readAll(out + "/shard-0-of-1.json"))) as! [String: Any]
    #expect(plan["inputs"] as? [String] == good.map { inputs + "/" + $0 }, "sorted, whatever order they came in")
  }
}
