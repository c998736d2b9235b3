import AtrousIO
import AtrousTestSupport
import Foundation
import Testing

/// `atrous models`, `atrous features` and `atrous hypercolumns` run as a
/// user runs them: outputs, sidecars and exit codes.
@Suite struct FeatureCommandTests {
  static let net = "Tests/Fixtures/hypercolumns/net.onnx"
  static let image = "Tests/Fixtures/hypercolumns/input.png"

  @Test func modelsListsTheBuiltIns() throws {
    let result = try CLIRunner.run("models")
    #expect(result.status == 0)
    for name in ["default (default)", "mnist", "ppocr", "layers: sigma0.7, sigma1.0, sigma1.6, sigma3.5, sigma5.0"] {
      #expect(result.stdout.contains(name), "\(name)")
    }
  }

  @Test func hypercolumnsMatchThePythonPipeline() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "block1,block2,block3,pooled",
                                   "-o", folder + "/hc.npy", "--timings")
    #expect(result.status == 0, "\(result.stderr)")
    let ours = try NPY.read(folder + "/hc.npy")
    let expected = try NPY.read(Fixtures.path("hypercolumns/expected.npy"))
    #expect(ours.shape == [47, 61, 52])
    #expect(closeness(ours.tensor(), expected.tensor(), rtol: 0, atol: 1e-4).isClose)
    let lines = result.stderr.split(separator: "\n")
    #expect(lines.first?.hasPrefix("kernels: ") == true)
    #expect(lines.dropFirst().first?.hasPrefix("threads: 1 file at once x ") == true)
    let stages = lines.filter { $0.hasPrefix("timing: ") }.map { String($0.split(separator: " ")[1]) }
    #expect(stages == ["load", "decode", "model", "upsample+concat", "write"])
    #expect(lines.filter { $0.hasPrefix("timing: ") }.allSatisfy { (Double($0.split(separator: " ")[2]) ?? -1) >= 0 })
    let sidecar = try JSONSerialization.jsonObject(with: Data(FileIO.readAll(folder + "/hc.json"))) as! [String: Any]
    #expect(sidecar["shape"] as? [Int] == [47, 61, 52])
    let layers = sidecar["layers"] as! [[String: Any]]
    #expect(layers.map { $0["name"] as! String } == ["block1", "block2", "block3", "pooled"])
    #expect(layers.map { $0["channels"] as! [Int] } == [[0, 8], [8, 20], [20, 36], [36, 52]])
    #expect(layers.map { $0["channel_count"] as! Int } == [8, 12, 16, 16])
    #expect(layers[2]["shape"] as? [Int] == [12, 15, 16])
    let field = layers[1]["receptive_field"] as! [String: [Double]]
    // conv 3x3, pool 2x2/2, conv 3x3: size 3 + 1 + 2 * 2 = 8, jump 2, start 1.
    #expect(field["size"] == [8, 8] && field["jump"] == [2, 2] && field["start"] == [1, 1])
  }

  /// A disk that fills while bands are written on the writing thread (a
  /// tmpfs of half the output's size) ends the run with the error and
  /// leaves neither the array nor its sidecar. Needs the right to mount,
  /// as root has; skipped otherwise.
  @Test(arguments: [["--layout", "hwc"], ["--layout", "chw", "--dtype", "f16"]])
  func fullDiskLeavesNoHypercolumns(options: [String]) throws {
    let disk = Fixtures.scratchFolder()
    let bytes = 47 * 61 * 36 * (options.contains("f16") ? 2 : 4)
    guard Fixtures.shell("mount -t tmpfs -o size=\(bytes / 2048)k tmpfs \(disk)") == 0 else { return }
    defer { _ = Fixtures.shell("umount \(disk)") }
    let full = try CLIRunner.run(["hypercolumns", Self.image, "--model", Self.net, "--layers", "block1,block2,block3",
                                  "--tile", "16", "-o", disk + "/hc.npy"] + options)
    #expect(full.status == 1)
    #expect(full.stderr.contains("No space left on device"), "\(full.stderr)")
    #expect(Fixtures.listing(disk, recursive: true).isEmpty, "\(Fixtures.listing(disk, recursive: true))")
  }

  @Test func sampledPixelsAndPreview() throws {
    let folder = Fixtures.scratchFolder()
    let full = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "block3,block1", "-o", folder + "/full.npy",
                                 "--preview", folder + "/preview.png")
    #expect(full.status == 0, "\(full.stderr)")
    let preview = try ImageFile.read(folder + "/preview.png")
    #expect(preview.width == 122 && preview.height == 47)
    try AtomicFileWriter.write(Array("x,y\n0,0\n60,46\n13,21\n".utf8), to: folder + "/pixels.csv")
    let sparse = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "block3,block1",
                                   "--pixels", folder + "/pixels.csv", "-o", folder + "/some.npy")
    #expect(sparse.status == 0, "\(sparse.stderr)")
    let values = try NPY.read(folder + "/some.npy").tensor(), all = try NPY.read(folder + "/full.npy").tensor()
    let coordinates = try NPY.read(folder + "/some-pixels.npy")
    #expect(values.shape == [3, 24] && coordinates.shape == [3, 2] && coordinates.dtype == .int64)
    for (n, (x, y)) in [(0, 0), (60, 46), (13, 21)].enumerated() {
      #expect(Array(values.scalars[(n * 24)..<((n + 1) * 24)]) == Array(all.scalars[((y * 61 + x) * 24)..<((y * 61 + x + 1) * 24)]))
    }
    let outside = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "block1", "--pixels",
                                    folder + "/pixels.csv", "--size", "20x20", "-o", folder + "/bad.npy")
    #expect(outside.status == 1)
    #expect(outside.stderr.contains("pixel (60, 46) is outside the 20x20 image"), "\(outside.stderr)")
    #expect(!FileIO.exists(folder + "/bad.npy"))
  }

  /// --upsample jbu and guided reach the export (the sidecar names them,
  /// the values differ from bilinear), tiles give the whole image's values,
  /// and their settings are checked.
  @Test func guidedUpsamplingOptions() throws {
    let folder = Fixtures.scratchFolder()
    let common = ["hypercolumns", Self.image, "--model", Self.net, "--layers", "block2,block3"]
    let bilinear = try CLIRunner.run(common + ["-o", folder + "/b.npy"])
    #expect(bilinear.status == 0, "\(bilinear.stderr)")
    let plain = try NPY.read(folder + "/b.npy").tensor().scalars
    for (method, settings, named) in [("jbu", ["--range-sigma", "0.2"], "jbu spatial_sigma 2.0 range_sigma 0.2"),
                                      ("guided", ["--radius", "4"], "guided radius 4.0 epsilon 0.001")] {
      let whole = try CLIRunner.run(common + ["--upsample", method] + settings + ["-o", folder + "/\(method).npy"])
      let tiled = try CLIRunner.run(common + ["--upsample", method] + settings + ["--tile", "12", "-o", folder + "/\(method)-t.npy"])
      #expect(whole.status == 0 && tiled.status == 0, "\(whole.stderr) \(tiled.stderr)")
      let values = try NPY.read(folder + "/\(method).npy").tensor().scalars
      #expect(closeness(try NPY.read(folder + "/\(method)-t.npy").tensor().scalars, values, rtol: 0, atol: 1e-5).isClose)
      #expect(!closeness(values, plain, rtol: 0, atol: 1e-3).isClose, "\(method) equals bilinear")
      let sidecar = try JSONSerialization.jsonObject(with: Data(FileIO.readAll(folder + "/\(method).json"))) as! [String: Any]
      #expect(sidecar["upsample"] as? String == named)
    }
    for (arguments, message) in [(["--upsample", "nearest"], "--upsample must be bilinear, jbu, guided"),
                                 (["--upsample", "jbu", "--radius", "3"], "--radius applies to --upsample guided"),
                                 (["--upsample", "guided", "--epsilon", "0"], "--epsilon must be a positive number"),
                                 (["--range-sigma", "0.1"], "--range-sigma applies to --upsample jbu")] {
      let refused = try CLIRunner.run(common + arguments + ["-o", folder + "/x.npy"])
      #expect(refused.status != 0 && refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
    }
    #expect(!FileIO.exists(folder + "/x.npy"))
  }

  @Test func badLayersAndModelsAreClearErrors() throws {
    let folder = Fixtures.scratchFolder()
    let unknown = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "nope", "-o", folder + "/x.npy")
    #expect(unknown.status == 1)
    #expect(unknown.stderr.hasPrefix("error: \(Self.net): no layer named 'nope'"), "\(unknown.stderr)")
    let missing = try CLIRunner.run("hypercolumns", Self.image, "--model", folder + "/none.onnx", "-o", folder + "/x.npy")
    #expect(missing.status == 1)
    #expect(missing.stderr.hasPrefix("error: \(folder)/none.onnx:"), "\(missing.stderr)")
    let tiled = try CLIRunner.run("hypercolumns", Self.image, "--model", Self.net, "--layers", "pooled", "--tile", "16",
                                  "-o", folder + "/x.npy")
    #expect(tiled.status == 1)
    #expect(tiled.stderr.contains("cannot run in tiles: its GlobalAveragePool sees the whole image"), "\(tiled.stderr)")
    let usage = try CLIRunner.run("hypercolumns", Self.image, "-o", folder + "/x.png")
    #expect(usage.status == 64)
    #expect(Fixtures.listing(folder).isEmpty)
  }

  @Test func batchKeepsGoodFilesAndReportsBadOnes() throws {
    let folder = Fixtures.scratchFolder(), inputs = Fixtures.scratchFolder()
    let png = try FileIO.readAll(Fixtures.path("hypercolumns/gray.png"))
    try AtomicFileWriter.write(png, to: inputs + "/a.png")
    try AtomicFileWriter.write(png, to: inputs + "/b.png")
    try AtomicFileWriter.write(Array(png.prefix(100)), to: inputs + "/cut.png")
    let result = try CLIRunner.run("hypercolumns", inputs, "--out-dir", folder, "--layers", "sigma1.0,sigma5.0")
    #expect(result.status == 1)
    #expect(result.stderr.contains("error: 1 of 3 files failed"), "\(result.stderr)")
    #expect(Fixtures.listing(folder) == ["a.json", "a.npy", "b.json", "b.npy", "manifest-0-of-1.jsonl", "shard-0-of-1.json"])
    #expect(try NPY.read(folder + "/a.npy").shape == [64, 80, 12])
  }

  @Test func featuresWritesChannelsMontageAndManifest() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("features", Self.image, "--model", Self.net, "--layers", "block3,pool", "-o", folder,
                                   "--colormap", "viridis", "--npy")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(Fixtures.listing(folder) == ["block3", "manifest.json", "pool"])
    let files = Fixtures.listing(folder + "/block3")
    #expect(files.count == 16 + 2 && files.contains("channel_015.png") && files.contains("montage.png") && files.contains("block3.npy"))
    let channel = try ImageFile.read(folder + "/block3/channel_003.png")
    #expect(channel.width == 15 && channel.height == 12 && channel.format == .rgb)
    // 16 channels in a 4 x 4 grid of cells enlarged 5x (to at least 64 pixels), 2 pixels apart.
    let montage = try ImageFile.read(folder + "/block3/montage.png")
    #expect(montage.width == 4 * 75 + 3 * 2 && montage.height == 4 * 60 + 3 * 2)
    let raw = try NPY.read(folder + "/block3/block3.npy").tensor()
    #expect(raw.shape == [12, 15, 16])
    let manifest = try JSONSerialization.jsonObject(with: Data(FileIO.readAll(folder + "/manifest.json"))) as! [String: Any]
    let layer = (manifest["layers"] as! [[String: Any]])[0]
    #expect(layer["shape"] as? [Int] == [12, 15, 16])
    let range = layer["range"] as! [Double]
    #expect(abs(range[0] - Double(raw.scalars.min()!)) < 1e-6 && abs(range[1] - Double(raw.scalars.max()!)) < 1e-6)
    let gray16 = try CLIRunner.run("features", Self.image, "--model", Self.net, "--layers", "block1", "-o", folder + "/g",
                                   "--bits", "16")
    #expect(gray16.status == 0, "\(gray16.stderr)")
    #expect(try ImageFile.read(folder + "/g/block1/channel_000.png").bitDepth == .sixteen)
    // Where each channel sits in the montage, and bars for the pooled 1x1 maps.
    let grid = layer["montage"] as! [String: Any]
    #expect(grid["kind"] as? String == "grid" && grid["cell"] as? [Int] == [60, 75])
    #expect((grid["channel_origins"] as! [[Int]])[5] == [77, 62])
    let bars = try CLIRunner.run("features", Self.image, "--model", Self.net, "--layers", "pooled", "-o", folder + "/p")
    #expect(bars.status == 0, "\(bars.stderr)")
    let pooled = try JSONSerialization.jsonObject(with: Data(FileIO.readAll(folder + "/p/manifest.json"))) as! [String: Any]
    #expect(((pooled["layers"] as! [[String: Any]])[0]["montage"] as! [String: Any])["kind"] as? String == "bars")
    #expect(try ImageFile.read(folder + "/p/pooled/montage.png").height == 256)
  }

  /// A montage over --max-side shrinks its cells; --layers all on the
  /// built-in filter bank names its maps, not the nodes it is built from.
  @Test func montageCapAndNamedLayers() throws {
    let folder = Fixtures.scratchFolder()
    let capped = try CLIRunner.run("features", Self.image, "--model", Self.net, "--layers", "block1", "-o", folder + "/c",
                                   "--max-side", "100")
    #expect(capped.status == 0, "\(capped.stderr)")
    let montage = try ImageFile.read(folder + "/c/block1/montage.png")
    #expect(max(montage.width, montage.height) <= 100 && max(montage.width, montage.height) > 80)
    let all = try CLIRunner.run("features", "Tests/Fixtures/hypercolumns/gray.png", "--layers", "all", "-o", folder + "/all")
    #expect(all.status == 0, "\(all.stderr)")
    #expect(Fixtures.listing(folder + "/all") == ["manifest.json", "sigma0.7", "sigma1.0", "sigma1.6", "sigma3.5", "sigma5.0"])
  }
}
