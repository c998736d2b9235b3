import AtrousBatch
import AtrousCore
import AtrousIO
import AtrousTestSupport
import Foundation
import Testing

/// The pieces of a sharded batch, each against values computed elsewhere
/// (Python's hashlib) or against the rule it states.
@Suite struct BatchPartsTests {
  /// FIPS 180-4's examples and a long message fed in uneven pieces, with
  /// digests from Python's hashlib.
  @Test func sha256MatchesHashlib() {
    func hex(_ bytes: [UInt8]) -> String {
      var hash = SHA256()
      hash.update(bytes)
      return hash.hex()
    }
    #expect(hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
              == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    let long = (0..<100_000).map { UInt8($0 * 7 % 251) }
    var pieces = SHA256(), start = 0, size = 1
    while start < long.count {
      let end = min(long.count, start + size)
      pieces.update(Array(long[start..<end]))
      start = end
      size = size * 3 % 1000 + 1
    }
    #expect(pieces.hex() == "96ad0ddabe9c733d4550fde750255a94806811029be67504bd9bd68e556686b9")
    #expect(hex(long) == pieces.hex())
  }

  /// Same settings, same fingerprint; any setting or a model byte changed,
  /// another.
  @Test func fingerprintFollowsSettingsAndFileBytes() throws {
    let folder = Fixtures.scratchFolder()
    try AtomicFileWriter.write([1, 2, 3], to: folder + "/m.onnx")
    func print(_ layers: String?, _ dtype: String) throws -> String {
      var f = Fingerprint(command: "hypercolumns")
      try f.addFile("model", path: folder + "/m.onnx")
      f.add("layers", layers)
      f.add("dtype", dtype)
      return f.value
    }
    let base = try print("a", "f32")
    #expect(try print("a", "f32") == base)
    #expect(try print("a", "f16") != base)
    #expect(try print(nil, "f32") != base)
    let empty = try print("", "f32"), absent = try print(nil, "f32")
    #expect(empty != absent)
    try AtomicFileWriter.write([1, 2, 4], to: folder + "/m.onnx")
    #expect(try print("a", "f32") != base)
    #expect(base.hasPrefix("sha256:") && base.count == 23)
  }

  /// Folders (with and without subfolders), patterns and lists give one
  /// byte-sorted list without repeats; what the kinds refuse is left out.
  @Test func inputListsAreSortedAndComplete() throws {
    let root = Fixtures.scratchFolder()
    for path in ["b.png", "a.png", "B.png", "notes.txt", ".hidden.png", "sub/c.png", "sub/deeper/d.png", "sub/e.txt"] {
      let full = root + "/" + path
      try FileManager.default.createDirectory(atPath: OutputFolderPath.parent(full), withIntermediateDirectories: true)
      try AtomicFileWriter.write([0], to: full)
    }
    let png = { (path: String) in path.hasSuffix(".png") }
    let flat = try InputList.expand([root], kindsText: ".png", accepts: png)
    #expect(flat.files == ["B.png", "a.png", "b.png"].map { root + "/" + $0 })
    #expect(flat.warnings == ["warning: \(root)/sub: a subfolder; only files directly in \(root) are read (--recursive reads subfolders)"])
    let deep = try InputList.expand([root], recursive: true, kindsText: ".png", accepts: png)
    #expect(deep.files == ["B.png", "a.png", "b.png", "sub/c.png", "sub/deeper/d.png"].map { root + "/" + $0 })
    #expect(deep.warnings.isEmpty)
    let pattern = try InputList.expand([root + "/sub/*", root + "/[ab].png"], kindsText: ".png", accepts: png)
    #expect(pattern.files == ["a.png", "b.png", "sub/c.png"].map { root + "/" + $0 })
    try AtomicFileWriter.write(Array("\(root)/b.png\r\n\nmissing.png\n\(root)/a.png\n".utf8), to: root + "/list.txt")
    let listed = try InputList.expand([root + "/b.png"], fileList: try InputList.readList(root + "/list.txt"),
                                      kindsText: ".png", accepts: png)
    #expect(listed.files == ["\(root)/a.png", "\(root)/b.png", "missing.png"])
    #expect(throws: InputError.noMatch(pattern: root + "/*.jpg")) {
      try InputList.expand([root + "/*.jpg"], kindsText: ".png", accepts: png)
    }
    #expect(throws: InputError.emptyFolder(path: root + "/sub/deeper/", kinds: ".jpg")) {
      try InputList.expand([root + "/sub/deeper/"], kindsText: ".jpg", accepts: { $0.hasSuffix(".jpg") })
    }
  }

  /// N shards with indices 0..<N take every position exactly once, for
  /// every list length, including shards with none.
  @Test func shardsCoverEveryFileOnce() throws {
    for total in [0, 1, 3, 40, 41] {
      for count in 1...7 {
        var seen = [Int](repeating: 0, count: total)
        for index in 0..<count { for p in try Shard.parse("\(index)/\(count)").positions(of: total) { seen[p] += 1 } }
        #expect(seen.allSatisfy { $0 == 1 }, "\(total) files, \(count) shards")
      }
    }
    for bad in ["4/4", "-1/4", "1/0", "1", "a/b", "1/2/3"] {
      #expect(throws: ShardError.badSpec(bad)) { try Shard.parse(bad) }
    }
  }

  /// Slurm arrays of any start and step, and Kubernetes' index with the
  /// count given, each give the task's place; what cannot is refused.
  @Test func shardsFromTheEnginesEnvironment() throws {
    func shard(_ env: [String: String], count: Int? = nil) throws -> String? {
      try Shard.fromEnvironment(env, count: count).map { "\($0.index)/\($0.count)" }
    }
    #expect(try shard([:]) == nil)
    #expect(try shard(["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"]) == "2/4")
    // --array=1-10: ids 1..10.
    #expect(try shard(["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "10"]) == "0/10")
    // --array=0-18:2, with and without the count.
    #expect(try shard(["SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "18",
                       "SLURM_ARRAY_TASK_STEP": "2"]) == "3/10")
    #expect(try shard(["SLURM_ARRAY_TASK_ID": "18", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2",
                       "SLURM_ARRAY_TASK_COUNT": "10"]) == "9/10")
    #expect(throws: ShardError.self) {
      try shard(["SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"])
    }
    #expect(throws: ShardError.self) { try shard(["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"]) }
    // Some ids of a 32-task array again, with the count given: the ids are the indices.
    #expect(try shard(["SLURM_ARRAY_TASK_ID": "17", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_COUNT": "2"], count: 32) == "17/32")
    #expect(throws: ShardError.self) { try shard(["SLURM_ARRAY_TASK_ID": "32", "SLURM_ARRAY_TASK_COUNT": "2"], count: 32) }
    #expect(try shard(["JOB_COMPLETION_INDEX": "3"], count: 5) == "3/5")
    #expect(throws: ShardError.countNeeded(index: 3)) { try shard(["JOB_COMPLETION_INDEX": "3"]) }
    #expect(throws: ShardError.self) { try shard(["JOB_COMPLETION_INDEX": "5"], count: 5) }
  }

  /// Each field as documented; names never leave the output folder.
  @Test func outputNameTemplates() throws {
    let name = try OutputName("{parent}/{stem}-{index}.npy")
    #expect(name.render(input: "data/cats/x.tar.png", index: 7) == "cats/x.tar-7.npy")
    #expect(name.render(input: "x.png", index: 0) == "./x-0.npy")
    #expect(try OutputName("{name}.json").render(input: "/a/b/.png", index: 1) == ".png.json")
    #expect(try OutputName("{parent}_{stem}").render(input: "../x.png", index: 1) == "__x")
    #expect(throws: OutputNameError.unknownField(template: "{base}.npy", field: "base")) { try OutputName("{base}.npy") }
    #expect(throws: OutputNameError.unclosedBrace(template: "{stem.npy")) { try OutputName("{stem.npy") }
    for escaping in ["/abs/{stem}", "../{stem}", "a/../../{stem}", "{stem}/", ""] {
      #expect(throws: OutputNameError.escapes(template: escaping)) { try OutputName(escaping) }
    }
  }

  /// A file counts by its latest line; a shard with no plan is missing
  /// whole; throughput spans the first start to the last end of the files
  /// made.
  @Test func summaryCountsEachFileByItsLatestLine() {
    func record(_ output: String, _ status: ManifestRecord.Status, error: String? = nil, ms: Double = 0, end: Double)
      -> ManifestRecord {
      ManifestRecord(input: "in/" + output, output: output, status: status, error: error, bytes: 1, mtime: 0,
                     fingerprint: "f", ms: ms > 0 ? ["model": ms] : [:], end: end)
    }
    let plans = [
      ShardPlan(shard: 0, shards: 3, total: 7, fingerprint: "f", inputs: [], outputs: ["a", "d", "g"]),
      ShardPlan(shard: 1, shards: 3, total: 7, fingerprint: "f", inputs: [], outputs: ["b", "e"]),
      // A plan of an earlier split is ignored.
      ShardPlan(shard: 0, shards: 1, total: 7, fingerprint: "f", inputs: [], outputs: ["a", "b", "c", "d", "e", "f", "g"]),
    ]
    let records = [
      record("a", .failed, error: "bad", end: 10),
      record("a", .done, ms: 2000, end: 14),  // retried: done
      record("d", .done, ms: 1000, end: 12),
      record("b", .skipped, end: 11),  // complete already
      record("e", .done, ms: 500, end: 13),
      record("e", .failed, error: "disk full", end: 20),  // made again, and failed
      record("g", .skipped, error: "failed before: bad", end: 15),
    ]
    let s = ManifestSummary(records: records, plans: plans)
    #expect(s.total == 7 && s.shards == 3 && s.shardsNotStarted == [2])
    #expect(s.done == 3)
    #expect(s.failed.map { $0.input } == ["in/e", "in/g"] && s.failed.map { $0.error } == ["disk full", "failed before: bad"])
    // c and f are shard 2's, never started: 7 - 5 planned.
    #expect(s.missing == 2)
    #expect(s.made == 3 && s.seconds == 14 - (12 - 1.0) && s.stageMilliseconds == ["model": 3500])
    #expect(!s.isComplete)
  }

  /// The CPU count follows the affinity mask and the cgroup quota, as
  /// their files write them.
  @Test func cpuLimitRule() {
    #expect(CPULimit.quota(cpuMax: "max 100000\n") == nil)
    #expect(CPULimit.quota(cpuMax: "150000 100000\n") == 1.5)
    #expect(CPULimit.cores(affinity: 8, online: 64, quota: nil) == 8)
    #expect(CPULimit.cores(affinity: 8, online: 64, quota: 1.5) == 2)
    #expect(CPULimit.cores(affinity: nil, online: 4, quota: 0.2) == 1)
    #expect(CPULimit.available >= 1 && CPULimit.available <= Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
  }
}

/// The parent of a path, for making fixture trees.
enum OutputFolderPath {
  static func parent(_ path: String) -> String { String(path[..<path.lastIndex(of: "/")!]) }
}
