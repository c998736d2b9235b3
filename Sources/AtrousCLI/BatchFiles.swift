import ArgumentParser
import AtrousBatch
import AtrousFeatures
import AtrousIO

/// The files of one command run: the sorted inputs, each one's output,
/// and the positions this task makes. With `-o`, one input and its output;
/// with `--out-dir`, this task's shard of the listed inputs, less what is
/// complete already, with a `ShardRun` keeping the folder's manifest.
struct BatchFiles {
  var inputs: [String]
  /// Full paths, one per input.
  var outputs: [String]
  var positions: [Int]
  var shardRun: ShardRun?

  /// - Parameters:
  ///   - arguments: the input arguments (files, folders, patterns).
  ///   - extension: the outputs' extension (nil for folders).
  ///   - fingerprint: what the numbers depend on; asked only for a batch.
  ///   - completeFiles: the files that make up the output at a path, all
  ///     present when it is complete.
  /// Ends the command (status 1) when the inputs, names or folder do not
  /// allow the run, before any work.
  static func prepare(arguments: [String], options: BatchOptions, output: String?, outDir: String?, kinds: Set<FileKind>,
                      extension ext: String?, fingerprint: () throws -> Fingerprint,
                      completeFiles: (String) -> [String]) throws -> BatchFiles {
    let listed = try options.fileList.map { list in try Reporting.orExit(file: list) { try InputList.readList(list) } } ?? []
    let kindsText = FileKind.allCases.filter(kinds.contains).map { $0 == .jpeg ? ".jpg, .jpeg" : "." + $0.rawValue }
      .joined(separator: ", ")
    let list = try Reporting.orExit(file: arguments.first ?? "") {
      try InputList.expand(arguments, fileList: listed, recursive: options.recursive, kindsText: kindsText) { path in
        FileKind(path: path).map(kinds.contains) ?? false
      }
    }
    for warning in list.warnings { Reporting.printError(warning) }
    guard let outDir else {
      guard list.files.count == 1 else {
        Reporting.printError("error: \(arguments.joined(separator: " ")): -o takes one input and these are \(list.files.count); use --out-dir")
        throw ExitCode.fileFailed
      }
      return BatchFiles(inputs: list.files, outputs: [output!], positions: [0], shardRun: nil)
    }

    let template = try OutputName(options.name ?? "{stem}" + (ext.map { "." + $0 } ?? ""))
    let names = list.files.enumerated().map { template.render(input: $1, index: $0) }
    try ensureDistinct(outputs: names.map { OutputFolder.join(outDir, $0) }, of: list.files)
    if let reserved = names.first(where: ManifestFolder.isReserved) {
      Reporting.printError("error: \(OutputFolder.join(outDir, reserved)): the name of a batch manifest; choose another --name")
      throw ExitCode.fileFailed
    }
    let shard: Shard
    do {
      shard = try options.resolvedShard()
    } catch {
      Reporting.printError("error: \(error)")
      throw ExitCode.fileFailed
    }
    try OutputFolder.make(outDir)
    let print = try Reporting.orExit(file: outDir) { try fingerprint().value }
    let outputs = names.map { OutputFolder.join(outDir, $0) }
    let run = try Reporting.orExit(file: outDir) {
      try ShardRun(folder: outDir, shard: shard, inputs: list.files, names: names, fingerprint: print,
                   overwrite: options.overwrite, retryFailed: options.retryFailed) { position in
        completeFiles(outputs[position]).allSatisfy(FileIO.exists)
      }
    }
    try Reporting.orExit(file: run.manifestPath) { try run.recordSkips() }
    let complete = run.skipped.filter { $0.reason == nil }.count, left = run.skipped.count - complete
    if complete > 0 {
      Reporting.printError("skipped \(complete) of \(complete + left + run.pending.count) files: their outputs are complete (--overwrite makes them again)")
    }
    if left > 0 { Reporting.printError("skipped \(left) files that failed before (--retry-failed tries them again)") }
    // Subfolders the names make, before the jobs write into them.
    for position in run.pending where names[position].contains("/") {
      try Reporting.orExit(file: outputs[position]) { try makeFolders(OutputFolder.parent(of: outputs[position]), under: outDir) }
    }
    return BatchFiles(inputs: list.files, outputs: outputs, positions: run.pending, shardRun: run)
  }

  /// `mkdir -p` from `root` (which exists) down to `folder`.
  private static func makeFolders(_ folder: String, under root: String) throws {
    if FileIO.isDirectory(folder) { return }
    try makeFolders(OutputFolder.parent(of: folder), under: root)
    try FileIO.makeFolder(folder)
  }

  /// Refuses, before any work, a batch in which two inputs would write the
  /// same output (`a.png` and `a.jpg` into one folder): status 1.
  static func ensureDistinct(outputs: [String], of inputs: [String]) throws {
    var writer: [String: String] = [:]
    for (output, input) in zip(outputs, inputs) {
      if let other = writer[output] {
        Reporting.printError("error: \(output): both \(other) and \(input) would write it; rename one, or give --name a template that tells them apart")
        throw ExitCode.fileFailed
      }
      writer[output] = input
    }
  }
}

extension Fingerprint {
  /// A command's fingerprint, starting from its model: the ONNX file's
  /// bytes, or a built-in graph's name with the version that built it.
  static func of(_ model: LoadedModel, command: String) throws -> Fingerprint {
    var print = Fingerprint(command: command)
    print.add("version", AtrousCommand.configuration.version)
    if let file = model.file {
      try print.addFile("model", path: file)
    } else {
      print.add("model", model.name)
    }
    return print
  }
}
