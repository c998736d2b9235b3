import AtrousIO
import AtrousTestSupport
import Foundation
import Testing

/// What a new user trips on: output folders that do not exist yet, names
/// typed wrong, pixel lists from other tools, values a format cannot hold.
/// Each runs the real binary and checks the status, the message and the
/// files left.
@Suite struct FirstUseTests {
  static let net = "Tests/Fixtures/hypercolumns/net.onnx"
  static let image = "Tests/Fixtures/hypercolumns/input.png"
  static let gray = "Tests/Fixtures/hypercolumns/gray.png"

  /// `--out-dir` is made when missing, for every command that takes it; a
  /// missing parent or a file in the way is a usage error that writes
  /// nothing.
  @Test(arguments: [
    ["hypercolumns", "--layers", "sigma1.0"], ["filter", "sobel:mag"], ["features", "--layers", "sigma1.0"],
  ])
  func missingOutputFolderIsMade(_ command: [String]) throws {
    let folder = Fixtures.scratchFolder()
    let made = try CLIRunner.run(command + [Self.gray, "--out-dir", folder + "/new/"])
    #expect(made.status == 0, "\(made.stderr)")
    #expect(!Fixtures.listing(folder + "/new").isEmpty)
    let orphan = try CLIRunner.run(command + [Self.gray, "--out-dir", folder + "/none/new"])
    #expect(orphan.status == 64)
    #expect(orphan.stderr.contains("the folder it would go in, \(folder)/none, does not exist"), "\(orphan.stderr)")
    try AtomicFileWriter.write([1], to: folder + "/file")
    let blocked = try CLIRunner.run(command + [Self.gray, "--out-dir", folder + "/file"])
    #expect(blocked.status == 64)
    #expect(blocked.stderr.contains("in the way of the folder"), "\(blocked.stderr)")
    #expect(Fixtures.listing(folder) == ["file", "new"])
  }

  /// `a.png` and `a.jpg` into one folder would both write `a`: refused
  /// before any work, by every batch command.
  @Test(arguments: [
    ["hypercolumns", "--layers", "sigma1.0"], ["filter", "sobel:mag"], ["features", "--layers", "sigma1.0"],
  ])
  func inputsWritingTheSameOutputAreRefused(_ command: [String]) throws {
    let inputs = Fixtures.scratchFolder(), folder = Fixtures.scratchFolder()
    let image = try ImageFile.read(Self.gray)
    try ImageFile.write(image, to: inputs + "/a.png", format: .png)
    try ImageFile.write(image, to: inputs + "/a.jpg", format: .jpeg)
    let result = try CLIRunner.run(command + [inputs, "--out-dir", folder])
    #expect(result.status == 1)
    #expect(result.stderr.contains("both \(inputs)/a.jpg and \(inputs)/a.png would write it"), "\(result.stderr)")
    #expect(Fixtures.listing(folder).isEmpty)
  }

  /// The sparse export writes its preview too: the chosen pixels, on
  /// black.
  @Test func sampledExportWritesItsPreview() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "block1", "--sample", "50",
                                   "--seed", "1", "-o", folder + "/some.npy", "--preview", folder + "/look.png")
    #expect(result.status == 0, "\(result.stderr)")
    let preview = try ImageFile.read(folder + "/look.png")
    #expect(preview.width == 122 && preview.height == 47)
    let lit = stride(from: 0, to: preview.samples.count, by: 3).filter { preview.samples[$0..<($0 + 3)].contains { $0 > 0 } }
    // 50 pixels on each half, none elsewhere (a pixel may map to black).
    #expect(lit.count > 50 && lit.count <= 100, "\(lit.count)")
  }

  /// Pixel lists as other tools write them: CRLF, floats with no
  /// fraction, spaces, semicolons; a header of words is skipped; a bad
  /// line is named.
  @Test func pixelListsFromOtherTools() throws {
    let folder = Fixtures.scratchFolder()
    let lists = [
      "x,y\r\n0,0\r\n60,46\r\n", "0.0,0.0\n60.0,46.0\n", "0 0\n60\t46\n", "x;y\n0;0\n\n60;46\n",
    ]
    for (n, text) in lists.enumerated() {
      try AtomicFileWriter.write(Array(text.utf8), to: folder + "/p\(n).csv")
      let result = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "block1", "--pixels",
                                     folder + "/p\(n).csv", "-o", folder + "/s\(n).npy")
      #expect(result.status == 0, "\(text): \(result.stderr)")
      #expect(try NPY.read(folder + "/s\(n)-pixels.npy").int64s == [0, 0, 60, 46], "\(text)")
    }
    for (text, message) in [("0,0\n1.5,2\n", "line 2 ('1.5,2'): '1.5' is not a whole pixel index"),
                            ("0,0\n1,2,3\n", "line 2 ('1,2,3'): expected two numbers, x and y, found 3 fields"),
                            ("x,y\n", "no x,y pixels in the file")] {
      try AtomicFileWriter.write(Array(text.utf8), to: folder + "/bad.csv")
      let result = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "block1", "--pixels",
                                     folder + "/bad.csv", "-o", folder + "/bad.npy")
      #expect(result.status == 1)
      #expect(result.stderr == "error: \(folder)/bad.csv: \(message)\n", "\(result.stderr)")
      #expect(!FileIO.exists(folder + "/bad.npy"))
    }
  }

  /// Values past float16's range become infinity, and the user is told
  /// how many, for dense and sparse exports alike.
  @Test func float16OverflowIsReported() throws {
    let folder = Fixtures.scratchFolder()
    // Inputs scaled by 100000 make sums well past 65504.
    let dense = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "block1", "--std", "0.00001",
                                  "--dtype", "f16", "-o", folder + "/big.npy")
    #expect(dense.status == 0, "\(dense.stderr)")
    let values = try NPY.read(folder + "/big.npy").doubles
    let infinite = values.filter { $0.isInfinite }.count
    #expect(infinite > 0)
    #expect(dense.stderr.contains("warning: \(folder)/big.npy: \(infinite) values beyond float16's range"), "\(dense.stderr)")
    let sparse = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "block1", "--std", "0.00001",
                                   "--dtype", "f16", "--sample", "30", "-o", folder + "/some.npy")
    let some = try NPY.read(folder + "/some.npy").doubles.filter { $0.isInfinite }.count
    #expect(sparse.stderr.contains("warning: \(folder)/some.npy: \(some) values beyond"), "\(sparse.stderr)")
    let fine = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "block1", "--dtype", "f16",
                                 "-o", folder + "/fine.npy")
    #expect(fine.status == 0 && fine.stderr.isEmpty, "\(fine.stderr)")
  }

  /// A mistyped filter is a usage error naming it (with the nearest name
  /// when there is one) and listing the filters, and nothing is written.
  @Test func unknownFiltersAreNamed() throws {
    let folder = Fixtures.scratchFolder()
    let blur = try CLIRunner.run("filter", Self.gray, "--out-dir", folder, "sobel:mag", "blur:size=3")
    #expect(blur.status == 64)
    #expect(blur.stderr.contains("unknown filter 'blur'; the filters are box, dog, gaussian"), "\(blur.stderr)")
    let typo = try CLIRunner.run("filter", Self.gray, "-o", folder + "/x.png", "gausian:sigma=2")
    #expect(typo.stderr.contains("unknown filter 'gausian' (did you mean 'gaussian'?)"), "\(typo.stderr)")
    let layer = try CLIRunner.run("hypercolumns", Self.gray, "--layers", "sigma1.o", "-o", folder + "/x.npy")
    #expect(layer.stderr == "error: default: no layer named 'sigma1.o' (did you mean 'sigma1.0'?) "
              + "(layers: sigma0.7, sigma1.0, sigma1.6, sigma3.5, sigma5.0)\n", "\(layer.stderr)")
    let parameter = try CLIRunner.run("filter", Self.gray, "-o", folder + "/x.png", "gaussian:sgima=2")
    #expect(parameter.stderr.hasPrefix("error: gaussian:sgima=2: filter 'gaussian' takes no parameter 'sgima' (did you mean 'sigma'?)"),
            "\(parameter.stderr)")
    let bare = try CLIRunner.run("filter", Self.gray, "-o", folder + "/x.png", "laplacain")
    #expect(bare.status == 64 && bare.stderr.contains("(did you mean 'laplacian'?)"), "\(bare.stderr)")
    #expect(Fixtures.listing(folder).isEmpty)
  }

  /// A model that is neither a file nor a built-in: its name, why, and the
  /// built-in names, with the nearest one.
  @Test func missingModelsAreExplained() throws {
    let folder = Fixtures.scratchFolder()
    let typo = try CLIRunner.run("inspect", "mnsit")
    #expect(typo.status == 1)
    #expect(typo.stderr == "error: mnsit: no such file, and no built-in model of that name (did you mean 'mnist'?); "
              + "the built-in models are default, mnist, ppocr (atrous models lists them)\n", "\(typo.stderr)")
    let missing = try CLIRunner.run("run", folder + "/none.onnx", "--input", "x=" + Self.gray, "-o", folder + "/out")
    #expect(missing.status == 1 && missing.stderr.hasPrefix("error: \(folder)/none.onnx: no such file"), "\(missing.stderr)")
    let directory = try CLIRunner.run("hypercolumns", Self.gray, "--model", folder, "-o", folder + "/x.npy")
    #expect(directory.status == 1)
    #expect(directory.stderr == "error: \(folder): is a folder; give an ONNX file or a built-in model's name\n", "\(directory.stderr)")
    #expect(!directory.stderr.contains("NSCocoaErrorDomain") && !missing.stderr.contains("NSCocoaErrorDomain"))
    #expect(Fixtures.listing(folder).isEmpty)
  }

  /// Every built-in model's default layers are maps that `features` and
  /// `hypercolumns` take.
  @Test(arguments: ["default", "mnist"])
  func builtInDefaultLayersAreMaps(_ model: String) throws {
    let folder = Fixtures.scratchFolder()
    let columns = try CLIRunner.run("hypercolumns", Self.gray, "--model", model, "-o", folder + "/hc.npy")
    #expect(columns.status == 0, "\(columns.stderr)")
    let maps = try CLIRunner.run("features", Self.gray, "--model", model, "-o", folder + "/maps")
    #expect(maps.status == 0, "\(maps.stderr)")
  }

  /// An option that does nothing with the others given is a usage error
  /// naming both; numbers out of range, negative ones included, name the
  /// range.
  @Test func optionsWithoutEffectAreUsageErrors() throws {
    let folder = Fixtures.scratchFolder()
    let npy = "Tests/Fixtures/models/mnist-8/input_0.npy"
    let cases: [([String], String)] = [
      (["convert", Self.gray, folder + "/a.png", "--quality", "50"], "--quality has no effect: \(folder)/a.png is not JPEG"),
      (["convert", Self.gray, folder + "/a.jpg", "--compression", "3"], "--compression has no effect: \(folder)/a.jpg is not PNG"),
      (["convert", Self.gray, folder + "/a.jpg", "--quality", "-1"], "--quality must be within 1...100, not -1"),
      (["filter", Self.gray, "-o", folder + "/a.png", "--format", "npy", "sobel:mag"], "--format has no effect with -o"),
      (["filter", Self.gray, "--out-dir", folder, "--format", "npy", "--quality", "80", "sobel:mag"],
       "--quality has no effect: --format npy is not JPEG"),
      (["run", "mnist", "--input", "Input3=" + npy, "-o", folder + "/o", "--repeat", "3"],
       "--repeat has no effect without --timings or --profile"),
      (["run", "mnist", "--input", "Input3=" + npy, "--input", "Input3=" + npy, "-o", folder + "/o"], "--input Input3 is given twice"),
      (["run", "mnist", "--input", "Input3=" + Self.gray, "--bgr", "-o", folder + "/o"], "--bgr has no effect: mnist takes one gray channel"),
      (["hypercolumns", Self.gray, "--bgr", "--gray", "-o", folder + "/a.npy"], "--bgr has no effect with --gray"),
      (["hypercolumns", Self.gray, "--threads", "-2", "-o", folder + "/a.npy"], "--threads must be at least 1"),
      (["hypercolumns", Self.gray, "--size", "100000x100000", "-o", folder + "/a.npy"],
       "--size 100000x100000 is more than 1073741824 pixels"),
      (["inspect", "mnist", "--input-size", "100000x100000"], "--input-size 100000x100000 is more than 1073741824 pixels"),
    ]
    for (arguments, message) in cases {
      let result = try CLIRunner.run(arguments)
      #expect(result.status == 64, "\(arguments)")
      #expect(result.stderr.hasPrefix("error: \(message)"), "\(arguments): \(result.stderr)")
      #expect(result.stderr.hasSuffix("See 'atrous \(arguments[0]) --help' for the options.\n"), "\(result.stderr)")
    }
    #expect(Fixtures.listing(folder).isEmpty)
  }

  /// Mistyped subcommands and options get the nearest right name; help
  /// still goes to standard output with status 0.
  @Test func mistypedNamesGetSuggestions() throws {
    let command = try CLIRunner.run("filtr", Self.gray)
    #expect(command.status == 64)
    #expect(command.stderr.hasPrefix("error: unknown command 'filtr' (did you mean 'filter'?); the commands are info, convert"))
    let option = try CLIRunner.run("hypercolumns", Self.gray, "--ouput", "x.npy")
    #expect(option.status == 64)
    #expect(option.stderr.hasPrefix("error: unknown option '--ouput' (did you mean '--output'?) for atrous hypercolumns"))
    let help = try CLIRunner.run("help", "filter")
    #expect(help.status == 0 && help.stdout.contains("sobel:dx") && help.stderr.isEmpty)
  }

  /// PNGs are written at zlib level 1 unless asked (OpenCV's default);
  /// the level shows in the zlib header that starts the image data.
  @Test func pngCompressionLevel() throws {
    let folder = Fixtures.scratchFolder()
    func zlibLevelBits(_ path: String) throws -> UInt8 {
      let bytes = try FileIO.readAll(path)
      let idat = try #require((8..<(bytes.count - 4)).first { bytes[$0..<($0 + 4)].elementsEqual("IDAT".utf8) })
      #expect(bytes[idat + 4] & 0x0F == 8)  // deflate (the window size may be cut for small images)
      return bytes[idat + 5] >> 6  // FLEVEL: 0 fastest, 1 fast, 2 default, 3 best
    }
    #expect(try CLIRunner.run("filter", Self.gray, "-o", folder + "/fast.png", "sobel:mag").status == 0)
    #expect(try zlibLevelBits(folder + "/fast.png") == 0)
    #expect(try CLIRunner.run("filter", Self.gray, "-o", folder + "/small.png", "--compression", "9", "sobel:mag").status == 0)
    #expect(try zlibLevelBits(folder + "/small.png") == 3)
    #expect(try CLIRunner.run("convert", Self.gray, folder + "/c.png").status == 0)
    #expect(try zlibLevelBits(folder + "/c.png") == 0)
  }

  /// Messages in words: no internal names, no doubled prefixes, and the
  /// option that fixes a wrong image size.
  @Test func messagesSayWhatToDo() throws {
    let folder = Fixtures.scratchFolder()
    try AtomicFileWriter.write(Array("not a model".utf8), to: folder + "/bad.onnx")
    let model = try CLIRunner.run("inspect", folder + "/bad.onnx")
    #expect(model.status == 1)
    #expect(model.stderr == "error: \(folder)/bad.onnx: not a valid ONNX model: its bytes are not protobuf data "
              + "(another kind of file, or corrupt)\n", "\(model.stderr)")
    try AtomicFileWriter.write(Array("1,2\n3\n".utf8), to: folder + "/k.csv")
    let kernel = try CLIRunner.run("filter", Self.gray, "-o", folder + "/x.png", "kernel:file=\(folder)/k.csv")
    #expect(kernel.status == 1)
    #expect(kernel.stderr == "error: kernel:file=\(folder)/k.csv: malformed kernel: \(folder)/k.csv: rows of different lengths: [2, 1]\n",
            "\(kernel.stderr)")
    let fixed = "Tests/Fixtures/model-corpus/resnet18/model.onnx"
    let size = try CLIRunner.run("run", fixed, "--input", "input=SampleImages/coffee.png", "-o", folder + "/out")
    #expect(size.status == 1)
    #expect(size.stderr.hasSuffix("the model takes 96x96 images (width x height) and this one is 600x400; add --size 96x96 to resize it\n"),
            "\(size.stderr)")
    let resized = try CLIRunner.run("run", fixed, "--input", "input=SampleImages/coffee.png", "--size", "96x96", "-o", folder + "/out")
    #expect(resized.status == 0, "\(resized.stderr)")
    let upper = try CLIRunner.run("hypercolumns", Self.gray, "-o", folder + "/HC.NPY")
    #expect(upper.status == 0, "\(upper.stderr)")
    #expect(FileIO.exists(folder + "/HC.json"))
  }

  /// Folders as inputs: only the files a command reads (images for a
  /// model, .npy too for filters), a warning for each subfolder, and an
  /// error for a folder with none.
  @Test func folderInputs() throws {
    let inputs = Fixtures.scratchFolder(), folder = Fixtures.scratchFolder(), empty = Fixtures.scratchFolder()
    try FileManager.default.copyItem(atPath: Self.gray, toPath: inputs + "/a.png")
    try NPY.write(NPYArray(shape: [4, 4], floats: [Float](repeating: 1, count: 16)), to: inputs + "/b.npy")
    try FileManager.default.createDirectory(atPath: inputs + "/sub", withIntermediateDirectories: false)
    let columns = try CLIRunner.run("hypercolumns", inputs, "--out-dir", folder + "/hc", "--layers", "sigma1.0")
    #expect(columns.status == 0, "\(columns.stderr)")
    #expect(columns.stderr == "warning: \(inputs)/sub: a subfolder; only files directly in \(inputs) are read (--recursive reads subfolders)\n")
    #expect(Fixtures.listing(folder + "/hc") == ["a.json", "a.npy", "manifest-0-of-1.jsonl", "shard-0-of-1.json"])
    let filtered = try CLIRunner.run("filter", inputs, "--out-dir", folder + "/f", "--format", "npy", "box:size=3")
    #expect(filtered.status == 0, "\(filtered.stderr)")
    #expect(Fixtures.listing(folder + "/f") == ["a.npy", "b.npy", "manifest-0-of-1.jsonl", "shard-0-of-1.json"])
    let none = try CLIRunner.run("features", empty, "--out-dir", folder + "/maps")
    #expect(none.status == 1)
    #expect(none.stderr == "error: \(empty): no .png, .jpg, .jpeg files in the folder\n", "\(none.stderr)")
  }

  /// The default PNG mapping follows the last filter: faint responses
  /// (directions, LoG, DoG) are stretched, others are |v|.
  @Test func defaultMappingFollowsTheFilter() throws {
    let folder = Fixtures.scratchFolder()
    for (filter, mapping) in [("sobel:dir", "normalize"), ("log:sigma=2", "normalize"), ("dog:sigma=1", "normalize"),
                              ("sobel:mag", "abs"), ("gaussian:sigma=1", "abs")] {
      #expect(try CLIRunner.run("filter", Self.gray, "-o", folder + "/default.png", filter).status == 0)
      #expect(try CLIRunner.run("filter", Self.gray, "-o", folder + "/given.png", "--map", mapping, filter).status == 0)
      let a = try ImageFile.read(folder + "/default.png"), b = try ImageFile.read(folder + "/given.png")
      #expect(a.samples == b.samples, "\(filter)")
      if mapping == "normalize" { #expect(a.samples.max() == 255, "\(filter)") }
    }
  }

  /// A tile far smaller than its crop's margins is allowed (the values are
  /// the whole image's) but said to cost many times the work.
  @Test func tinyTilesAreWarnedOf() throws {
    let folder = Fixtures.scratchFolder()
    let tiny = try CLIRunner.run("hypercolumns", Self.gray, "--tile", "4", "-o", folder + "/t.npy")
    #expect(tiny.status == 0)
    #expect(tiny.stderr.hasPrefix("warning: --tile 4: the model runs on ") && tiny.stderr.contains("times the image's area"),
            "\(tiny.stderr)")
    let whole = try CLIRunner.run("hypercolumns", Self.gray, "-o", folder + "/w.npy")
    let (a, b) = (try FileIO.readAll(folder + "/t.npy"), try FileIO.readAll(folder + "/w.npy"))
    #expect(whole.stderr.isEmpty && a == b)
  }

  /// On a terminal (a pseudo-terminal from `script`), a job longer than
  /// ATROUS_PROGRESS_AFTER seconds (0 here) shows a progress line with
  /// rate and time left, and erases it at the end; in a pipe, or with
  /// --quiet, nothing.
  @Test func progressOnATerminalOnly() throws {
    let folder = Fixtures.scratchFolder()
    func onTerminal(_ arguments: String) throws -> String {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
      process.arguments = ["-qec", "\(CLIRunner.binary) \(arguments)", "/dev/null"]
      process.currentDirectoryURL = URL(fileURLWithPath: Fixtures.repository)
      process.environment = ProcessInfo.processInfo.environment.merging(["ATROUS_PROGRESS_AFTER": "0"]) { $1 }
      let output = Pipe()
      process.standardOutput = output
      process.standardInput = FileHandle.nullDevice
      try process.run()
      let bytes = output.fileHandleForReading.readDataToEndOfFile()
      process.waitUntilExit()
      #expect(process.terminationStatus == 0)
      return String(decoding: bytes, as: UTF8.self)
    }
    let rows = try onTerminal("filter \(Self.gray) -o \(folder)/a.png sobel:mag")
    #expect(rows.contains("/64 rows, ") && rows.contains(" rows/s, ") && rows.contains(" s left"), "\(rows)")
    #expect(rows.hasSuffix("\r\u{1B}[K"), "the line is erased at the end")
    let files = try onTerminal("hypercolumns Tests/Fixtures/hypercolumns --out-dir \(folder)/hc --layers sigma1.0")
    #expect(files.contains("/2 files, "), "\(files)")
    let quiet = try onTerminal("filter \(Self.gray) -o \(folder)/b.png sobel:mag --quiet")
    #expect(quiet.isEmpty, "\(quiet)")
    let piped = try CLIRunner.run("filter", Self.gray, "-o", folder + "/c.png", "sobel:mag")
    #expect(piped.stderr.isEmpty)
  }

  /// A fault of the model met while processing an image is reported
  /// against the model; the image's own faults against the image.
  @Test func modelFaultsNameTheModel() throws {
    let folder = Fixtures.scratchFolder()
    // Weights for 5 input channels: the image has 3.
    let bad = folder + "/bad.onnx"
    try FileManager.default.copyItem(atPath: Fixtures.path("bad-models/conv_channels.onnx"), toPath: bad)
    for command in [["hypercolumns", "-o", folder + "/x.npy"], ["features", "-o", folder + "/maps"]] {
      let result = try CLIRunner.run([command[0], Self.image, "--model", bad, "--layers", "y"] + command.dropFirst())
      #expect(result.status == 1)
      #expect(result.stderr.hasPrefix("error: \(bad): node 'n3' (Conv): "), "\(result.stderr)")
    }
  }

  /// A model whose declared input no machine could hold is refused by
  /// name instead of allocated (40 GB) or trapping (dims past 2^63).
  @Test(arguments: [("huge_input.onnx", "[1, 1, 100000, 100000]"), ("overflow_input.onnx", "[4294967296, 4294967296, 4]")])
  func hugeDeclaredInputsAreRefused(_ file: String, _ shape: String) throws {
    let model = Fixtures.path("bad-models/" + file)
    let result = try CLIRunner.run("inspect", model)
    #expect(result.status == 1)
    #expect(result.stderr == "error: \(model): graph input 'x': its shape \(shape) has more than 2147483648 elements\n",
            "\(result.stderr)")
  }

  /// SIGINT, SIGTERM or SIGHUP at any moment of an export: the process
  /// ends with 128 + the signal's number (or finishes first, or dies
  /// before it has set up, when it has made nothing), no temporary file is
  /// left, and the array, its sidecar and its preview are all there or
  /// none is.
  @Test(arguments: [SIGINT, SIGTERM, SIGHUP])
  func signalsLeaveNoTemporaryFiles(_ signal: Int32) throws {
    var random = SystemRandomNumberGenerator()
    for _ in 0..<3 {
      let folder = Fixtures.scratchFolder()
      let process = Process()
      process.executableURL = URL(fileURLWithPath: CLIRunner.binary)
      process.arguments = ["hypercolumns", "SampleImages/astronaut.png", "-o", folder + "/hc.npy", "--preview", folder + "/hc.png"]
      process.currentDirectoryURL = URL(fileURLWithPath: Fixtures.repository)
      process.standardError = FileHandle.nullDevice
      try process.run()
      usleep(UInt32.random(in: 20_000...400_000, using: &random))
      kill(process.processIdentifier, signal)
      process.waitUntilExit()
      let status = process.terminationStatus, reason = process.terminationReason
      #expect((reason == .exit && [0, 128 + signal].contains(status)) || (reason == .uncaughtSignal && status == signal),
              "\(reason) \(status)")
      #expect([[], ["hc.json", "hc.npy", "hc.png"]].contains(Fixtures.listing(folder)), "\(Fixtures.listing(folder))")
    }
  }

  /// `--max-memory` (and the default budget, from the cgroup limit or
  /// physical memory) refuses images, arrays and traced inputs that would
  /// not fit, before allocating them, with what would be allocated and the
  /// budget's source.
  @Test func memoryBudgetIsNamed() throws {
    // `filter` streams: 1 MiB holds the rows a Sobel reads; a wrapping
    // border reads the last rows first, and so every row.
    let streamed = try CLIRunner.run("filter", "SampleImages/astronaut.png", "sobel:mag", "-o", Fixtures.scratchFolder() + "/s.png",
                                     "--max-memory", "1M")
    #expect(streamed.status == 0, "\(streamed.stderr)")
    let image = try CLIRunner.run("filter", "SampleImages/astronaut.png", "sobel:mag,border=wrap", "-o",
                                  Fixtures.scratchFolder() + "/s.png", "--max-memory", "1M", "--threads", "1")
    #expect(image.status == 1)
    #expect(image.stderr == "error: SampleImages/astronaut.png: filtering holds 512 rows of 512 pixels at once, 3.2 MiB "
            + "with the output rows, more than the memory budget of 1 MiB (--max-memory 1M)\n", "\(image.stderr)")
    // A size given by an option is checked before the resize allocates it.
    let resized = try CLIRunner.run("hypercolumns", "SampleImages/astronaut.png", "--size", "30000x30000", "-o",
                                    Fixtures.scratchFolder() + "/h.npy", "--max-memory", "1G")
    #expect(resized.stderr == "error: SampleImages/astronaut.png: the image brought to 30000x30000x1 as float32 would take "
            + "3.4 GiB, more than the memory budget of 1 GiB (--max-memory 1G)\n", "\(resized.stderr)")
    let converted = try CLIRunner.run("convert", "SampleImages/astronaut.png", Fixtures.scratchFolder() + "/a.jpg", "--max-memory", "1M")
    #expect(converted.status == 0, "\(converted.stderr)")
    // A model takes the whole image.
    let whole = try CLIRunner.run("features", "SampleImages/astronaut.png", "--out-dir", Fixtures.scratchFolder(), "--max-memory", "1M")
    #expect(whole.stderr == "error: SampleImages/astronaut.png: decoding its 512x512 RGB pixels to float32 would take 3.8 MiB, "
            + "more than the memory budget of 1 MiB (--max-memory 1M)\n", "\(whole.stderr)")
    let folder = Fixtures.scratchFolder()
    try NPY.write(NPYArray(shape: [300, 300, 3], floats: [Float](repeating: 0, count: 270_000)), to: folder + "/a.npy")
    let array = try CLIRunner.run("filter", folder + "/a.npy", "box:size=3", "-o", folder + "/b.npy", "--max-memory", "500K")
    #expect(array.stderr == "error: \(folder)/a.npy: its (300, 300, 3) array as float32 would take 1 MiB, "
            + "more than the memory budget of 500 KiB (--max-memory 500K)\n", "\(array.stderr)")
    #expect(Fixtures.listing(folder) == ["a.npy"])
    let traced = try CLIRunner.run("inspect", "default", "--input-size", "8192x8192", "--max-memory", "100M")
    #expect(traced.status == 1)
    #expect(traced.stderr.hasSuffix("its shape [1, 1, 8192, 8192] would take 256 MiB, more than the memory budget of 100 MiB (--max-memory 100M)\n"),
            "\(traced.stderr)")
    let bad = try CLIRunner.run("convert", "SampleImages/astronaut.png", "-o", folder + "/c.npy", "--max-memory", "lots")
    #expect(bad.status == 64 && bad.stderr.hasPrefix("error: --max-memory must be a size such as 512M or 8G, not 'lots'\n"))
  }

  /// A disk that fills in the middle of `features --npy` (a tmpfs of half
  /// the size the outputs take) leaves none of the image's files. Needs
  /// the right to mount, as root has; skipped otherwise.
  @Test func fullDiskLeavesNoOutputs() throws {
    let arguments = ["features", Self.gray, "--npy", "--layers", "sigma0.7,sigma1.0"]
    let measured = Fixtures.scratchFolder()
    let complete = try CLIRunner.run(arguments + ["-o", measured + "/maps"])
    #expect(complete.status == 0, "\(complete.stderr)")
    let bytes = Fixtures.listing(measured + "/maps", recursive: true).reduce(0) {
      $0 + ((try? FileManager.default.attributesOfItem(atPath: measured + "/maps/" + $1)[.size] as? Int) ?? 0)
    }
    let disk = Fixtures.scratchFolder()
    let kilobytes = max(bytes / 2048, 8)
    guard Fixtures.shell("mount -t tmpfs -o size=\(kilobytes)k tmpfs \(disk)") == 0 else { return }
    defer { _ = Fixtures.shell("umount \(disk)") }
    let full = try CLIRunner.run(arguments + ["-o", disk + "/maps"])
    #expect(full.status == 1)
    #expect(full.stderr.contains("No space left on device"), "\(full.stderr)")
    let left = Fixtures.listing(disk + "/maps", recursive: true)
    #expect(left.allSatisfy { FileIO.isDirectory(disk + "/maps/" + $0) }, "only empty folders may be left: \(left)")
  }

  /// A temporary file left by a process that is gone (killed with
  /// SIGKILL) is removed by the next run writing into its folder; one of
  /// a process that still runs is not.
  @Test func staleTemporaryFilesAreRemoved() throws {
    let folder = Fixtures.scratchFolder()
    let gone = Process()
    gone.executableURL = URL(fileURLWithPath: "/bin/true")
    try gone.run()
    gone.waitUntilExit()
    let stale = ".atrous-\(gone.processIdentifier)-x-old.npy.tmp", live = ".atrous-\(getpid())-x-mine.npy.tmp"
    for name in [stale, live] { try AtomicFileWriter.write([1], to: folder + "/" + name.dropFirst(0)) }
    #expect(FileManager.default.fileExists(atPath: folder + "/" + stale))
    let result = try CLIRunner.run("hypercolumns", Self.gray, "-o", folder + "/hc.npy")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(!FileManager.default.fileExists(atPath: folder + "/" + stale))
    #expect(FileManager.default.fileExists(atPath: folder + "/" + live))
  }
}
