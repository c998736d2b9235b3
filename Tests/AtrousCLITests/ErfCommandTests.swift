import AtrousIO
import AtrousTestSupport
import Foundation
import Testing

/// `atrous erf` as a user runs it: the three outputs, their agreement with
/// the theoretical field, and its refusals.
@Suite struct ErfCommandTests {
  static func json(_ path: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(FileIO.readAll(path))) as! [String: Any]
  }

  @Test func randomInputsWithUniformWeights() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("erf", "default", "--layer", "sigma3.5", "--input-size", "64x72", "--samples", "3",
                                   "--uniform-weights", "-o", folder + "/erf.png")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("sigma3.5 unit (15, 17)"), "\(result.stdout)")
    let summary = try Self.json(folder + "/erf.json")
    let radii = ["radius_50", "radius_90", "radius_99"].map { summary[$0] as! Double }
    #expect(radii[0] > 0 && radii[0] < radii[1] && radii[1] < radii[2], "\(radii)")
    #expect(summary["share_inside_theoretical_field"] as? Double == 1)
    #expect(summary["samples"] as? Int == 3 && summary["uniform_weights"] as? Bool == true)
    let field = summary["theoretical_field"] as! [String: Any]
    let box = field["box"] as! [Double]
    let magnitude = try NPY.read(folder + "/erf.npy")
    #expect(magnitude.shape == [64, 72])
    let values = magnitude.tensor().scalars
    // Nothing outside the theoretical field, and the peak inside it.
    for y in 0..<64 {
      for x in 0..<72 where values[y * 72 + x] != 0 {
        #expect(Double(x) + 0.5 > box[0] && Double(x) + 0.5 < box[2] && Double(y) + 0.5 > box[1] && Double(y) + 0.5 < box[3])
      }
    }
    #expect(radii[2] <= ((box[2] - box[0]) * (box[2] - box[0]) + (box[3] - box[1]) * (box[3] - box[1])).squareRoot() / 2)
    let picture = try ImageFile.read(folder + "/erf.png")
    #expect(picture.width == 72 * 3 && picture.height == 64 * 3 && picture.channels == 3)
  }

  @Test func atAnImage() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("erf", "Tests/Fixtures/hypercolumns/net.onnx", "--layer", "block3",
                                   "--image", "Tests/Fixtures/hypercolumns/input.png", "-o", folder + "/e.png")
    #expect(result.status == 0, "\(result.stderr)")
    let summary = try Self.json(folder + "/e.json")
    #expect(summary["image"] as? String == "Tests/Fixtures/hypercolumns/input.png" && summary["samples"] as? Int == 1)
    #expect(try NPY.read(folder + "/e.npy").shape == [47, 61])
  }

  @Test func refusals() throws {
    let folder = Fixtures.scratchFolder()
    let cases: [([String], String)] = [
      (["default", "--layer", "nope", "-o", folder + "/a.png"], "no layer named 'nope'"),
      (["default", "--layer", "sigma1.0", "-o", folder + "/a.npy"], "-o must name a .png file"),
      (["default", "--layer", "sigma1.0", "--image", "x.png", "--input-size", "8x8", "-o", folder + "/a.png"],
       "--input-size is for random inputs"),
      (["mnist", "--layer", "Plus214_Output_0", "-o", folder + "/a.png"], "is a MatMul, whose gradient is not supported"),
      (["default", "--layer", "sigma5.0", "--input-size", "2000x2000", "--max-memory", "256M", "-o", folder + "/a.png"],
       "values and gradients would take"),
    ]
    for (arguments, message) in cases {
      let result = try CLIRunner.run(["erf"] + arguments)
      #expect(result.status != 0 && result.stderr.contains(message), "\(arguments): \(result.stderr)")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
  }
}
