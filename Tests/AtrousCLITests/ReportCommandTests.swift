import AtrousIO
import AtrousTestSupport
import Foundation
import Testing

/// `atrous report` writes one self-contained page; headless Chromium
/// renders it, and the screenshot shows the table and the pictures.
@Suite struct ReportCommandTests {
  /// Debian's headless Chromium, when installed (`.ci/run` installs it and
  /// sets ATROUS_REQUIRE_CHROMIUM, which makes its absence a failure).
  static let chromium = ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"].first { FileManager.default.isExecutableFile(atPath: $0) }

  static func report(_ folder: String) throws -> String {
    let path = folder + "/report.html"
    let result = try CLIRunner.run("report", "Tests/Fixtures/hypercolumns/net.onnx", "Tests/Fixtures/hypercolumns/input.png",
                                   "--layers", "block1,block2", "-o", path)
    #expect(result.status == 0, "\(result.stderr)")
    return path
  }

  @Test func pageIsSelfContained() throws {
    let folder = Fixtures.scratchFolder()
    let html = String(decoding: try FileIO.readAll(try Self.report(folder)), as: UTF8.self)
    for layer in ["block1.conv", "block1", "pool", "block2", "block3", "pooled"] { #expect(html.contains("<td>\(layer)</td>"), "\(layer)") }
    // Every picture is embedded; nothing is fetched.
    let sources = html.components(separatedBy: "src=\"").dropFirst().map { $0.prefix(22) }
    #expect(sources.count >= 2 + 2 * 8 - 2, "\(sources.count) pictures")
    #expect(sources.allSatisfy { $0 == "data:image/png;base64," })
    #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"))
    let refused = try CLIRunner.run("report", "default", "-o", folder + "/r.txt")
    #expect(refused.status != 0 && refused.stderr.contains("-o must name an .html file"))
  }

  @Test(.enabled(if: chromium != nil || ProcessInfo.processInfo.environment["ATROUS_REQUIRE_CHROMIUM"] != nil))
  func screenshotShowsTheTableAndPictures() throws {
    let chromium = try #require(Self.chromium, "headless Chromium is not installed (apt-get install chromium-headless-shell)")
    let folder = Fixtures.scratchFolder()
    let page = try Self.report(folder)
    let shot = folder + "/shot.png"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: chromium)
    process.arguments = ["--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--screenshot=" + shot, "--window-size=1200,900",
                         "file://" + (page.hasPrefix("/") ? page : FileManager.default.currentDirectoryPath + "/" + page)]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    let image = try ImageFile.read(shot)
    let (w, h, c) = (image.width, image.height, image.channels)
    let samples = image.samples
    func pixel(_ x: Int, _ y: Int) -> (Int, Int, Int) {
      let i = (y * w + x) * c
      return (samples[i], samples[i + 1], samples[i + 2])
    }
    // The table's header: rows with a long run of its colour (#1f3b63).
    let headerRows = (0..<h).filter { y in (0..<w).filter { x in pixel(x, y) == (0x1f, 0x3b, 0x63) }.count > 600 }
    #expect(headerRows.count >= 20, "header rows \(headerRows.count)")
    // Below it, the effective fields' heatmaps (inferno's bright orange and
    // yellow) and the input's orange suit.
    var heat = 0, suit = 0
    for y in stride(from: 0, to: h, by: 2) {
      for x in stride(from: 0, to: w, by: 2) {
        let (r, g, b) = pixel(x, y)
        if r > 230 && g > 120 && g < 220 && b < 90 { heat += 1 }
        if r > 180 && g > 60 && g < 140 && b < 60 { suit += 1 }
      }
    }
    #expect(heat > 20 && suit > 200, "heatmap pixels \(heat), suit pixels \(suit)")
    // Mostly white page, not an error page.
    let white = (0..<(w * h)).filter { samples[$0 * c] == 255 && samples[$0 * c + 1] == 255 && samples[$0 * c + 2] == 255 }.count
    #expect(white > w * h / 4 && white < w * h * 9 / 10)
  }
}
