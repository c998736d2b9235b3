import AtrousIO
import AtrousTestSupport
import Foundation
import Testing

/// Every example a user reads runs as written: the `atrous` commands of the
/// README's code blocks, in order, and the EXAMPLES of each subcommand's
/// `--help`, each in a folder holding the files they name (small stand-ins
/// made here from the fixtures). An example that fails fails the build.
@Suite struct ExampleTests {
  /// The commands of README.md's ```sh blocks that start with `atrous`,
  /// and the set-up command without its `swift run -c release`, as shell
  /// words with the comments cut off.
  static func readmeCommands() throws -> [[String]] {
    let text = String(decoding: try FileIO.readAll(Fixtures.repository + "/README.md"), as: UTF8.self)
    var inBlock = false, commands: [[String]] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      if line.hasPrefix("```") {
        inBlock = line == "```sh"
        continue
      }
      guard inBlock else { continue }
      var words = try shellWords(String(line))
      if words.starts(with: ["swift", "run", "-c", "release"]) { words.removeFirst(4) }
      if words.first == "atrous" { commands.append(Array(words.dropFirst())) }
    }
    return commands
  }

  /// The lines of `atrous <subcommand> --help` under EXAMPLES that start
  /// with `atrous`, as shell words.
  static func helpExamples(_ subcommand: String) throws -> [[String]] {
    let help = try CLIRunner.run(subcommand, "--help")
    guard let start = help.stdout.range(of: "EXAMPLES") else { return [] }
    return try help.stdout[start.upperBound...].split(separator: "\n")
      .map { $0.trimmingCharacters(in: .whitespaces) }
      .filter { $0.hasPrefix("atrous ") }
      .map { Array(try shellWords($0).dropFirst()) }
  }

  /// A line split as a POSIX shell splits it: on blanks outside quotes,
  /// with '...' and "..." quoting, up to a `#` that starts a word.
  static func shellWords(_ line: String) throws -> [String] {
    var words: [String] = [], word = "", inWord = false
    var quote: Character? = nil
    for c in line {
      if let q = quote {
        if c == q { quote = nil } else { word.append(c) }
      } else if c == "'" || c == "\"" {
        quote = c
        inWord = true
      } else if c == " " || c == "\t" {
        if inWord { words.append(word) }
        word = ""
        inWord = false
      } else if c == "#" && !inWord {
        break
      } else {
        word.append(c)
        inWord = true
      }
    }
    if quote != nil { throw CocoaError(.fileReadCorruptFile) }
    if inWord { words.append(word) }
    return words
  }

  /// A folder with the files the examples name: photos, a 16-bit scan,
  /// folders of images, arrays, a pixel list and models.
  static func workspace() throws -> String {
    let folder = Fixtures.scratchFolder()
    let manager = FileManager.default
    func copy(_ from: String, _ to: String) throws { try manager.copyItem(atPath: from, toPath: folder + "/" + to) }
    try manager.createSymbolicLink(atPath: folder + "/SampleImages", withDestinationPath: Fixtures.repository + "/SampleImages")
    let photo = Fixtures.path("hypercolumns/input.png")  // 61x47 RGB
    try copy(photo, "photo.png")
    try copy(photo, "page.png")
    try ImageFile.write(try ImageFile.read(photo), to: folder + "/photo.jpg", format: .jpeg)
    try copy(Fixtures.path("pngsuite/valid/basn0g16.png"), "scan16.png")
    for name in ["photos", "scans"] {
      try manager.createDirectory(atPath: folder + "/" + name, withIntermediateDirectories: false)
      try copy(photo, name + "/a.png")
      try copy(Fixtures.path("hypercolumns/gray.png"), name + "/b.png")
    }
    try NPY.write(NPYArray(shape: [20, 24], floats: (0..<480).map { Float($0 % 17) }), to: folder + "/in.npy")
    try NPY.write(NPYArray(shape: [1, 3, 224, 224], floats: (0..<150_528).map { Float($0 % 255) / 255 }),
                  to: folder + "/input.npy")
    try AtomicFileWriter.write(Array("x,y\n0,0\n60,46\n13,21\n".utf8), to: folder + "/points.csv")
    try AtomicFileWriter.write(Array("scans/a.png\nscans/b.png\n".utf8), to: folder + "/scans.txt")
    try copy(Fixtures.path("readme/vgg.onnx"), "vgg.onnx")
    try copy(Fixtures.path("readme/model.onnx"), "model.onnx")
    try copy(Fixtures.model("ppocrv4-det"), "det.onnx")
    return folder
  }

  @Test func everyReadmeExampleRuns() throws {
    let commands = try Self.readmeCommands()
    // The set-up command, the tour of every subcommand: far more than a
    // handful, so that a change in the README's layout cannot empty this.
    #expect(commands.count >= 25, "\(commands.count) README commands found")
    let folder = try Self.workspace()
    for command in commands {
      let result = try CLIRunner.run(command, in: folder)
      #expect(result.status == 0, "atrous \(command.joined(separator: " ")): \(result.stderr)")
    }
  }

  @Test(arguments: ["info", "convert", "filter", "run", "inspect", "models", "features", "hypercolumns", "erf", "report"])
  func everyHelpExampleRuns(_ subcommand: String) throws {
    let examples = try Self.helpExamples(subcommand)
    #expect(!examples.isEmpty, "atrous \(subcommand) --help has no EXAMPLES")
    let folder = try Self.workspace()
    for command in examples {
      #expect(command.first == subcommand, "\(command)")
      let result = try CLIRunner.run(command, in: folder)
      #expect(result.status == 0, "atrous \(command.joined(separator: " ")): \(result.stderr)")
    }
  }

  @Test func shellWordsSplitAsAShellDoes() throws {
    #expect(try Self.shellWords("atrous filter scans/ --out-dir e/ 'kernel:1,0;2,0'  # a comment")
              == ["atrous", "filter", "scans/", "--out-dir", "e/", "kernel:1,0;2,0"])
    #expect(try Self.shellWords("a \"b c\" d#e") == ["a", "b c", "d#e"])
  }
}
