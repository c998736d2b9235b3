import AtrousIO
import AtrousTestSupport
import Testing

@Suite struct ConvertCommandTests {
  @Test(arguments: ["basn0g01", "basn3p04", "tbwn3p08", "basn4a16", "basn6a16", "tbwn0g16", "basi0g16"])
  func pngToNpyIsUnscaledPixels(name: String) throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("convert", "Tests/Fixtures/pngsuite/valid/\(name).png", folder + "/out.npy")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try difference(NPY.read(folder + "/out.npy"), NPY.read(Fixtures.path("pngsuite/expected/\(name).npy"))) == nil)
  }

  @Test func jpegToNpyAppliesOrientationUnlessAsked() throws {
    let folder = Fixtures.scratchFolder()
    #expect(try CLIRunner.run("convert", "Tests/Fixtures/jpeg/orientation8.jpg", folder + "/a.npy").status == 0)
    #expect(try difference(NPY.read(folder + "/a.npy"), NPY.read(Fixtures.path("jpeg/expected/orientation8.npy"))) == nil)
    #expect(try CLIRunner.run("convert", "--keep-orientation", "Tests/Fixtures/jpeg/orientation8.jpg",
                              folder + "/b.npy").status == 0)
    #expect(try difference(NPY.read(folder + "/b.npy"), NPY.read(Fixtures.path("jpeg/expected/orientation8-stored.npy"))) == nil)
  }

  @Test func npyToPngAndBackIsLossless() throws {
    let folder = Fixtures.scratchFolder()
    for depth in ["8", "16"] {
      let source = Fixtures.path("conversion/coffee-rgb\(depth).npy")
      #expect(try CLIRunner.run("convert", source, folder + "/c.png").status == 0)
      #expect(try CLIRunner.run("convert", folder + "/c.png", folder + "/c.npy").status == 0)
      #expect(try difference(NPY.read(folder + "/c.npy"), NPY.read(source)) == nil)
    }
  }

  @Test func bitDepthGrayAndJpegOptions() throws {
    let folder = Fixtures.scratchFolder()
    #expect(try CLIRunner.run("convert", "--bit-depth", "8", "Tests/Fixtures/pngsuite/valid/basn6a16.png",
                              folder + "/d.png").status == 0)
    let eight = try ImageFile.read(folder + "/d.png")
    #expect(eight.bitDepth == .eight && eight.format == .rgba)
    #expect(try CLIRunner.run("convert", "--gray", "SampleImages/coffee.png", folder + "/g.npy").status == 0)
    let gray = try Image(NPY.read(folder + "/g.npy"))
    #expect(gray == (try ImageFile.read(Fixtures.repository + "/SampleImages/coffee.png").grayscale()))
    #expect(try CLIRunner.run("convert", "--quality", "40", "SampleImages/horse.png", folder + "/h.jpg").status == 0)
    let horse = try ImageFile.read(folder + "/h.jpg")
    #expect(horse.format == .rgb && horse.width == 400 && horse.height == 328)
  }

  @Test func refusesToWriteOverItsInput() throws {
    let folder = Fixtures.scratchFolder()
    let path = folder + "/x.png"
    try AtomicFileWriter.write(Fixtures.bytes("pngsuite/valid/basn2c08.png"), to: path)
    let before = try FileIO.readAll(path)
    let result = try CLIRunner.run("convert", path, path)
    #expect(result.status == 1)
    #expect(result.stderr == "error: \(path): refusing to write over an input file\n")
    #expect(try FileIO.readAll(path) == before)
  }

  @Test func badInputLeavesNoOutput() throws {
    let folder = Fixtures.scratchFolder()
    let cut = folder + "/cut.png"
    let whole = try Fixtures.bytes("pngsuite/valid/basn2c08.png")
    try AtomicFileWriter.write(Array(whole[0..<(whole.count - 20)]), to: cut)
    let result = try CLIRunner.run("convert", cut, folder + "/out.png")
    #expect(result.status == 1)
    #expect(result.stderr == "error: \(cut): truncated PNG: unexpected end of file\n")
    #expect(Fixtures.listing(folder) == ["cut.png"])
  }

  @Test func usageErrors() throws {
    for arguments in [["convert", "SampleImages/camera.png", "out.bmp"],
                      ["convert", "--bit-depth", "12", "SampleImages/camera.png", "out.png"],
                      ["convert", "--bit-depth", "16", "SampleImages/camera.png", "out.jpg"],
                      ["convert", "--quality", "101", "SampleImages/camera.png", "out.jpg"],
                      ["convert", "SampleImages/camera.png"]] {
      let result = try CLIRunner.run(arguments)
      #expect(result.status == 64, "\(arguments)")
      #expect(!result.stderr.isEmpty)
    }
  }

  @Test func oversizedImageIsRefused() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("convert", "--max-pixels", "1000", "SampleImages/camera.png", folder + "/o.npy")
    #expect(result.status == 1)
    #expect(result.stderr.contains("512x512 = 262144 pixels, over the limit of 1000"))
    #expect(Fixtures.listing(folder).isEmpty)
  }
}
