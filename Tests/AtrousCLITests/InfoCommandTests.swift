import AtrousTestSupport
import Testing

@Suite struct InfoCommandTests {
  /// The binary loads FoundationEssentials alone: Foundation would bring
  /// its internationalization library and ICU, which the dynamic linker
  /// binds at every start (about 5 ms of each run). The loader lists what
  /// it would load when LD_TRACE_LOADED_OBJECTS is set, as ldd does; the C
  /// library is always among them (a release build links the Swift
  /// libraries into the binary, a debug build loads them).
  @Test func startsWithoutFoundationAndICU() throws {
    let result = try CLIRunner.run(["--version"], environment: ["LD_TRACE_LOADED_OBJECTS": "1"])
    #expect(result.status == 0)
    #expect(result.stdout.contains("libc.so"), "\(result.stdout)")
    for library in ["libFoundation.so", "libFoundationInternationalization", "_FoundationICU"] {
      #expect(!result.stdout.contains(library), "\(library) is loaded: \(result.stdout)")
    }
  }

  @Test func describesImagesAndArrays() throws {
    let result = try CLIRunner.run("info", "SampleImages/astronaut.png", "SampleImages/rocket.jpg",
                                   "Tests/Fixtures/pngsuite/valid/basi3p04.png",
                                   "Tests/Fixtures/pngsuite/valid/basn4a16.png", "Tests/Fixtures/npy/u1_3x4x3.npy")
    #expect(result.status == 0)
    #expect(result.stderr.isEmpty)
    let lines = result.stdout.split(separator: "\n").map(String.init)
    #expect(lines == [
      "SampleImages/astronaut.png: PNG, 512x512, 3 channels (RGB), 8-bit; stored as RGB 8-bit",
      "SampleImages/rocket.jpg: JPEG, 640x427, 3 channels (RGB), 8-bit; stored as YCbCr 3 components",
      "Tests/Fixtures/pngsuite/valid/basi3p04.png: PNG, 32x32, 3 channels (RGB), 8-bit; stored as palette 4-bit, interlaced",
      "Tests/Fixtures/pngsuite/valid/basn4a16.png: PNG, 32x32, 2 channels (gray+alpha), 16-bit; stored as gray+alpha 16-bit",
      "Tests/Fixtures/npy/u1_3x4x3.npy: NPY, dtype uint8 ('|u1'), shape (3, 4, 3)",
    ])
  }

  @Test func reportsOrientedSize() throws {
    let turned = try CLIRunner.run("info", "Tests/Fixtures/jpeg/orientation6.jpg")
    #expect(turned.stdout.contains("JPEG, 24x40,") && turned.stdout.contains("EXIF orientation 6"))
    let stored = try CLIRunner.run("info", "--keep-orientation", "Tests/Fixtures/jpeg/orientation6.jpg")
    #expect(stored.stdout.contains("JPEG, 40x24,"))
  }

  @Test func badFilesAreNamedAndTheRestStillReported() throws {
    let result = try CLIRunner.run("info", "Tests/Fixtures/pngsuite/invalid/xc1n0g08.png", "SampleImages/camera.png",
                                   "Tests/Fixtures/jpeg/monkey12.jpg", "no-such-file.png")
    #expect(result.status == 1)
    #expect(result.stdout == "SampleImages/camera.png: PNG, 512x512, 1 channel (gray), 8-bit; stored as gray 8-bit\n")
    let errors = result.stderr.split(separator: "\n").map(String.init)
    #expect(errors.count == 3)
    #expect(errors[0] == "error: Tests/Fixtures/pngsuite/invalid/xc1n0g08.png: invalid PNG: Invalid IHDR data")
    #expect(errors[1] == "error: Tests/Fixtures/jpeg/monkey12.jpg: unsupported JPEG: Unsupported JPEG data precision 12")
    #expect(errors[2].hasPrefix("error: no-such-file.png: cannot read: No such file"))
  }

  /// Usage errors: status 64, in the same style as file errors, and where
  /// to read the options.
  @Test func usageErrorsUseArgumentParserStatus() throws {
    let result = try CLIRunner.run("info")
    #expect(result.status == 64)
    #expect(result.stderr == "error: Missing expected argument '<files> ...'\nSee 'atrous info --help' for the options.\n")
  }
}
