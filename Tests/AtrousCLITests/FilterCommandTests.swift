import AtrousCore
import AtrousFilters
import AtrousIO
import AtrousTestSupport
import Testing

@Suite struct FilterCommandTests {
  /// The command's .npy output against the OpenCV fixtures for the same input.
  @Test(arguments: ["sobel-dx", "sobel-mag", "gaussian-s1.5", "kernel-3x3", "laplacian-k3"])
  func npyOutputIsTheRawFilterValues(name: String) throws {
    let folder = Fixtures.scratchFolder()
    let spec = try #require(["sobel-dx": "sobel:dx", "sobel-mag": "sobel:mag", "gaussian-s1.5": "gaussian:sigma=1.5",
                             "kernel-3x3": "kernel:1,2,0;0,1,-1;3,0,1", "laplacian-k3": "laplacian:ksize=3"][name])
    let result = try CLIRunner.run("filter", "Tests/Fixtures/filters/input-rgb.npy", "-o", folder + "/o.npy", spec)
    #expect(result.status == 0, "\(result.stderr)")
    let output = try NPY.read(folder + "/o.npy")
    #expect(output.dtype == .float32)
    let expected = try NPY.read(Fixtures.path("filters/rgb-\(name).npy")).tensor()
    let range = expected.scalars.map(abs).max()!
    #expect(closeness(output.tensor(), expected, rtol: 1e-4, atol: 1e-4 * range).isClose)
  }

  @Test func imageInputUsesRawSampleValuesAndKeepsAlpha() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("filter", "SampleImages/horse.png", "-o", folder + "/h.npy", "gaussian:sigma=2")
    #expect(result.status == 0)
    let image = try ImageFile.read(Fixtures.repository + "/SampleImages/horse.png")
    let input = Tensor(image, scale: .factor(1))
    let expected = try FilterChain([.gaussian(sigma: 2)]).apply(to: input, passThrough: 3)
    let output = try NPY.read(folder + "/h.npy").tensor()
    #expect(output.shape == [328, 400, 4])
    #expect(output == expected)
  }

  @Test func grayRank2InputKeepsItsRank() throws {
    let folder = Fixtures.scratchFolder()
    let gray = try NPY.read(Fixtures.path("filters/input-gray.npy"))
    try NPY.write(NPYArray(dtype: .float32, shape: Array(gray.shape.prefix(2)), bytes: gray.bytes), to: folder + "/in.npy")
    let result = try CLIRunner.run("filter", folder + "/in.npy", "-o", folder + "/out.npy", "sobel:dx,stride=2")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try NPY.read(folder + "/out.npy").shape == [21, 20])
  }

  @Test func pngOutputMapsValues() throws {
    let folder = Fixtures.scratchFolder()
    let input = Fixtures.path("filters/input-gray.npy")
    let expected = try NPY.read(Fixtures.path("filters/gray-sobel-dx.npy")).tensor().scalars
    for (map, transform) in [("abs", { (v: Float) in abs(v) }), ("clamp", { (v: Float) in v })] {
      #expect(try CLIRunner.run("filter", input, "-o", folder + "/\(map).png", "--map", map, "sobel:dx").status == 0)
      let image = try ImageFile.read(folder + "/\(map).png")
      #expect(image.bitDepth == .eight && image.format == .gray)
      let want = expected.map { Int(min(max(transform($0).rounded(.toNearestOrEven), 0), 255)) }
      let got = image.samples
      #expect(zip(got, want).filter { abs($0 - $1) > 1 }.isEmpty, "\(map)")
    }
    #expect(try CLIRunner.run("filter", input, "-o", folder + "/n.png", "--map", "normalize", "--bit-depth", "16",
                              "sobel:dx").status == 0)
    let normalized = try ImageFile.read(folder + "/n.png")
    #expect(normalized.bitDepth == .sixteen)
    #expect(normalized.samples.min() == 0 && normalized.samples.max() == 65535)
  }

  @Test func batchWritesGoodFilesAndReportsBadOnes() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("filter", "SampleImages/camera.png", "Tests/Fixtures/pngsuite/invalid/xd0n2c08.png",
                                   "SampleImages/coffee.png", "--out-dir", folder, "--format", "npy", "box:size=3",
                                   "--timings")
    #expect(result.status == 1)
    #expect(Fixtures.listing(folder) == ["camera.npy", "coffee.npy", "manifest-0-of-1.jsonl", "shard-0-of-1.json"])
    let lines = result.stderr.split(separator: "\n").map(String.init)
    #expect(lines.contains("error: Tests/Fixtures/pngsuite/invalid/xd0n2c08.png: invalid PNG: Invalid IHDR data"))
    #expect(lines.contains("error: 1 of 3 files failed"))
    let timings = lines.filter { $0.hasPrefix("timing: ") }.map { $0.split(separator: " ")[1] }
    #expect(timings == ["read", "filter", "write"])
    #expect(lines.filter { $0.hasPrefix("timing: ") }.allSatisfy { Double($0.split(separator: " ")[2]) != nil })
  }

  @Test(arguments: [
    ["kernel:1,0,-1;2,0"], ["kernel:1,x,3"], ["gaussian:ksize=4"], ["sobel:dx,ksize=4"], ["sobel:dx,stride=0"],
    ["sobel:dx,dilation=-1"], ["box:size=3,border=sideways"], ["gaussian:sigma=1,colour=red"], ["sobel"],
    ["laplacian:ksize=2"], ["gaussian:sigma=-1"],
  ])
  func malformedFiltersAreUsageErrors(filter: [String]) throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run(["filter", "SampleImages/camera.png", "-o", folder + "/o.png"] + filter)
    #expect(result.status == 64, "\(filter)")
    #expect(result.stderr.contains(filter[0]))
    #expect(Fixtures.listing(folder).isEmpty)
  }

  @Test func kernelLargerThanThePaddedInputFailsWithoutOutput() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("filter", "Tests/Fixtures/filters/input-gray.npy", "-o", folder + "/o.npy",
                                   "box:size=9,padding=valid,dilation=6")
    #expect(result.status == 1)
    #expect(result.stderr == "error: Tests/Fixtures/filters/input-gray.npy: the kernel spans 49 samples but the padded input height is only 41\n")
    #expect(Fixtures.listing(folder).isEmpty)
  }

  @Test func kernelFromFiles() throws {
    let folder = Fixtures.scratchFolder()
    try AtomicFileWriter.write(Array("# Sobel dx\n1, 0, -1\n2, 0, -2\n1, 0, -1\n".utf8), to: folder + "/k.csv")
    try NPY.write(NPYArray(shape: [3, 3], floats: [1, 0, -1, 2, 0, -2, 1, 0, -1]), to: folder + "/k.npy")
    let input = "Tests/Fixtures/filters/input-rgb.npy"
    for kernel in ["k.csv", "k.npy"] {
      #expect(try CLIRunner.run("filter", input, "-o", folder + "/\(kernel).out.npy", "kernel:file=\(folder)/\(kernel)",
                                "--convolve").status == 0)
    }
    let expected = try NPY.read(Fixtures.path("filters/rgb-sobel-dx.npy")).tensor()  // flipped [1 0 -1] is dx
    for kernel in ["k.csv", "k.npy"] {
      let got = try NPY.read(folder + "/\(kernel).out.npy").tensor()
      #expect(closeness(got, expected, rtol: 1e-5, atol: 1e-3).isClose, "\(kernel)")
    }
    let bad = try CLIRunner.run("filter", input, "-o", folder + "/bad.npy", "kernel:file=\(folder)/missing.csv")
    #expect(bad.status == 1)
    #expect(bad.stderr.contains("missing.csv"))
  }

  @Test func outputMustNotBeAnInput() throws {
    let folder = Fixtures.scratchFolder()
    try AtomicFileWriter.write(Fixtures.bytes("filters/input-gray.npy"), to: folder + "/x.npy")
    let result = try CLIRunner.run("filter", folder + "/x.npy", "-o", folder + "/x.npy", "sobel:dx")
    #expect(result.status == 1)
    #expect(result.stderr == "error: \(folder)/x.npy: refusing to write over an input file\n")
    #expect(try FileIO.readAll(folder + "/x.npy") == Fixtures.bytes("filters/input-gray.npy"))
  }
}
