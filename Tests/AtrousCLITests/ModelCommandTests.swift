import AtrousCore
import AtrousIO
import AtrousTestSupport
import Foundation
import Testing

@Suite struct ModelCommandTests {
  static let mnist = "Sources/_CModels/Models/mnist-8/model.onnx"

  @Test func runWritesGraphOutputsLikeOnnxRuntime() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("run", Self.mnist, "--input", "Input3=Tests/Fixtures/models/mnist-8/input_1.npy",
                                   "-o", folder, "--timings", "--repeat", "3")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(Fixtures.listing(folder) == ["Plus214_Output_0.npy"])
    let output = try NPY.read(folder + "/Plus214_Output_0.npy")
    #expect(output.dtype == .float32 && output.shape == [1, 10])
    let expected = try NPY.read(Fixtures.path("models/mnist-8/output_1.npy")).tensor()
    #expect(closeness(output.tensor(), expected, rtol: 1e-3, atol: 1e-5).isClose)
    let lines = result.stderr.split(separator: "\n")
    #expect(lines.first == "kernels: \(InstructionSet.process)")
    let stages = lines.dropFirst().map { $0.split(separator: " ") }
    #expect(stages.map { String($0[1]) } == ["read", "first-run", "model", "write"])
    #expect(stages.allSatisfy { $0[0] == "timing:" && Double($0[2]) != nil })
  }

  /// ATROUS_ISA caps the kernels' instruction set (to what the CPU has at
  /// most) without changing the results beyond rounding; a name it does
  /// not know is a usage error.
  @Test func instructionSetFromTheEnvironment() throws {
    let expected = try NPY.read(Fixtures.path("models/mnist-8/output_1.npy")).tensor()
    for isa in InstructionSet.allCases {
      let folder = Fixtures.scratchFolder()
      let result = try CLIRunner.run(["run", Self.mnist, "--input", "Input3=Tests/Fixtures/models/mnist-8/input_1.npy",
                                      "-o", folder, "--timings"], environment: ["ATROUS_ISA": isa.description])
      #expect(result.status == 0, "\(result.stderr)")
      #expect(result.stderr.hasPrefix("kernels: \(min(isa, InstructionSet.supported))\n"), "\(result.stderr)")
      let output = try NPY.read(folder + "/Plus214_Output_0.npy").tensor()
      #expect(closeness(output, expected, rtol: 1e-3, atol: 1e-5).isClose, "\(isa)")
    }
    let bad = try CLIRunner.run(["info", "Tests/Fixtures/pngsuite/valid/basn0g01.png"], environment: ["ATROUS_ISA": "sse9"])
    #expect(bad.status == 64)
    #expect(bad.stderr.hasPrefix("error: ATROUS_ISA: 'sse9' is not one of baseline, avx2, avx512\n"), "\(bad.stderr)")
  }

  @Test func missingOutputFolderIsMadeAndAFileInTheWayRefused() throws {
    let folder = Fixtures.scratchFolder() + "/new"
    let made = try CLIRunner.run("run", Self.mnist, "--input", "Input3=Tests/Fixtures/models/mnist-8/input_1.npy", "-o", folder)
    #expect(made.status == 0, "\(made.stderr)")
    #expect(Fixtures.listing(folder) == ["Plus214_Output_0.npy"])
    let blocked = try CLIRunner.run("run", Self.mnist, "--input", "Input3=Tests/Fixtures/models/mnist-8/input_1.npy",
                                    "-o", folder + "/Plus214_Output_0.npy")
    #expect(blocked.status == 64)
    #expect(blocked.stderr.contains("in the way of the folder"))
  }

  @Test func intermediateOutputsByName() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("run", Self.mnist, "--input", "Input3=Tests/Fixtures/models/mnist-8/input_0.npy",
                                   "-o", folder, "--outputs", "Pooling66_Output_0,ReLU32_Output_0")
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try NPY.read(folder + "/Pooling66_Output_0.npy").shape == [1, 8, 14, 14])
    #expect(try NPY.read(folder + "/ReLU32_Output_0.npy").shape == [1, 8, 28, 28])
  }

  @Test func ppocrPresetOnTheReferencePage() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("run", "Sources/_CModels/Models/ppocrv4-det/model.onnx", "--preset", "ppocr", "--input",
                                   "x=Tests/Fixtures/models/ppocrv4-det/page_384x768_bgr.png", "-o", folder)
    #expect(result.status == 0, "\(result.stderr)")
    let output = try NPY.read(folder + "/sigmoid_0.tmp_0.npy").tensor()
    let expected = try NPY.read(Fixtures.path("models/ppocrv4-det/output_0.npy")).tensor()
    let check = closeness(output, expected, rtol: 1e-3, atol: 1e-3)
    #expect(check.isClose, "\(check)")
  }

  @Test func badModelsAreClearErrors() throws {
    let folder = Fixtures.scratchFolder()
    let model = try FileIO.readAll(Fixtures.model("mnist-8"))
    try AtomicFileWriter.write(Array(model.prefix(model.count / 2)), to: folder + "/cut.onnx")
    try AtomicFileWriter.write(Array("not a model".utf8), to: folder + "/text.onnx")
    for name in ["cut.onnx", "text.onnx"] {
      let result = try CLIRunner.run("run", folder + "/" + name, "--input", "Input3=Tests/Fixtures/models/mnist-8/input_0.npy",
                                     "-o", folder)
      #expect(result.status == 1, "\(name)")
      #expect(result.stderr.hasPrefix("error: \(folder)/\(name): not a valid ONNX model"), "\(result.stderr)")
    }
    let wrongInput = try CLIRunner.run("run", Self.mnist, "--input", "image=Tests/Fixtures/models/mnist-8/input_0.npy", "-o", folder)
    #expect(wrongInput.status == 1)
    #expect(wrongInput.stderr.contains("graph input 'image': the model's inputs are Input3"))
    let wrongShape = try CLIRunner.run("run", Self.mnist, "--input", "Input3=Tests/Fixtures/npy/f4_2x3.npy", "-o", folder)
    #expect(wrongShape.status == 1)
    #expect(wrongShape.stderr.contains("graph input 'Input3'"))
    #expect(Fixtures.listing(folder) == ["cut.onnx", "text.onnx"])
  }

  /// Models breaking ONNX's rules, or using an op Atrous lacks, are refused
  /// naming the node and op, and nothing is written.
  @Test func badGraphsNameTheNode() throws {
    let folder = Fixtures.scratchFolder()
    let input = folder + "/x.npy"
    try NPY.write(NPYArray(shape: [1, 2, 3, 3], floats: (0..<18).map { Float($0) - 8.5 }), to: input)
    let expected = [
      "unsupported_op": "node 'recurrent' (LSTM): operator LSTM is not supported",
      "duplicate_node": "node 'twin' (Neg): another node has the same name",
      "duplicate_value": "node 'second' (Neg): value 'y' is already defined",
      "cycle": "node 'early' (Add): input 'b' has no value",
    ]
    for (name, message) in expected {
      let model = "Tests/Fixtures/bad-models/\(name).onnx"
      let result = try CLIRunner.run("run", model, "--input", "x=" + input, "-o", folder + "/out")
      #expect(result.status == 1, "\(name)")
      #expect(result.stderr.hasPrefix("error: \(model): \(message)"), "\(result.stderr)")
    }
    #expect(Fixtures.listing(folder) == ["x.npy"])
  }

  /// Outputs keep the element type ONNX gives them: a Cast to int32 and a
  /// comparison's bool.
  @Test func outputsKeepTheirOnnxTypes() throws {
    let folder = Fixtures.scratchFolder()
    let values = (0..<18).map { Float($0) / 2 - 4.25 }
    try NPY.write(NPYArray(shape: [1, 2, 3, 3], floats: values), to: folder + "/x.npy")
    let result = try CLIRunner.run("run", "Tests/Fixtures/bad-models/int_output.onnx", "--input", "x=\(folder)/x.npy", "-o", folder)
    #expect(result.status == 0, "\(result.stderr)")
    let ints = try NPY.read(folder + "/ints.npy"), flags = try NPY.read(folder + "/positive.npy")
    #expect(ints.dtype == .int32 && ints.shape == [1, 2, 3, 3])
    #expect(ints.doubles == values.map { Double(Int32($0.rounded(.towardZero))) })
    #expect(flags.dtype == .bool && flags.doubles == values.map { $0 > 0 ? 1 : 0 })
  }

  @Test func profileListsEveryNodeSlowestFirst() throws {
    let folder = Fixtures.scratchFolder()
    let result = try CLIRunner.run("run", Self.mnist, "--input", "Input3=Tests/Fixtures/models/mnist-8/input_1.npy", "-o", folder,
                                   "--profile", "--repeat", "2")
    #expect(result.status == 0, "\(result.stderr)")
    let lines = result.stderr.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    #expect(lines.allSatisfy { $0.first == "profile:" })
    let nodes = lines.dropLast()
    // MNIST's 12 nodes, less the bias Add, Relu and MaxPool fused into
    // each convolution: two convolutions, the Reshape and the MatMul.
    #expect(nodes.count == 4, "\(nodes)")
    let times = nodes.compactMap { Double($0[1]) }
    #expect(times.count == nodes.count && times == times.sorted(by: >))
    #expect(nodes.allSatisfy { $0.count >= 6 })
    let convs = nodes.filter { $0[2] == "Conv" }
    let strategies = ["blocked", "planar", "depthwise-planes", "depthwise", "gemv", "winograd", "grouped", "im2col"]
    #expect(convs.count == 2 && convs.allSatisfy {
      strategies.contains(String($0[5].split(separator: "+")[0].split(separator: ":")[0]))
    })
    #expect(lines.last?[1] == "total" && Double(lines.last?[2] ?? "") != nil)
  }

  @Test func inspectJSON() throws {
    let result = try CLIRunner.run("inspect", Self.mnist, "--json")
    #expect(result.status == 0)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    let layers = try #require(object["layers"] as? [[String: Any]])
    #expect(layers.count == 12)
    // Conv 8x1x5x5 + 8, conv 16x8x5x5 + 16, dense 256x10 + 10: the two
    // int64 Reshape shapes (4 elements) are not parameters.
    #expect(object["total_params"] as? Int == 200 + 8 + 3200 + 16 + 2560 + 10)
    let pool = try #require(layers.first { $0["name"] as? String == "Pooling160_Output_0" })
    #expect(pool["op"] as? String == "MaxPool")
    #expect(pool["output_shape"] as? [Int] == [1, 16, 4, 4])
    let field = try #require(pool["receptive_field"] as? [String: [Double]])
    // 5x5 conv, 2x2/2 pool, 5x5 conv, 3x3/3 pool: 5, 6, 14, 18; jumps 1, 2, 2, 6.
    #expect(field["size"] == [18, 18] && field["jump"] == [6, 6] && field["start"] == [3, 3])
  }

  @Test func inspectAtAFeature() throws {
    let result = try CLIRunner.run("inspect", Self.mnist, "--at", "Pooling160_Output_0", "2", "3")
    #expect(result.status == 0)
    #expect(result.stdout == "Pooling160_Output_0 feature (2, 3): centre (15, 21), receptive field 18x18, box (x0, y0, x1, y1) = (6, 12, 24, 30)\n")
    let outside = try CLIRunner.run("inspect", Self.mnist, "--at", "Pooling160_Output_0", "9", "0")
    #expect(outside.status == 1)
  }

  /// After the Reshape that flattens the last 4x4 map, the class scores
  /// see the whole 28x28 image: a pixel in the corner, outside the 18x18
  /// field of the map's feature (0, 0), moves them.
  @Test func layersAfterAFlatteningSeeTheWholeInput() throws {
    let result = try CLIRunner.run("inspect", Self.mnist, "--at", "Plus214_Output_0", "0", "0", "--json")
    #expect(result.status == 0, "\(result.stderr)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    let box = try #require(object["box"] as? [Double])
    #expect(object["whole_input"] as? Bool == true && box[0] <= 0 && box[1] <= 0 && box[2] >= 28 && box[3] >= 28)
    let text = try CLIRunner.run("inspect", Self.mnist, "--at", "Plus214_Output_0", "0", "0")
    #expect(text.stdout.hasSuffix(": the whole 28x28 input\n"), "\(text.stdout)")
    // The evidence: the scores for an image and for the same image with
    // its corner pixel changed.
    let folder = Fixtures.scratchFolder()
    let image = try NPY.read("Tests/Fixtures/models/mnist-8/input_0.npy")
    let plain = try CLIRunner.run("run", Self.mnist, "--input", "Input3=Tests/Fixtures/models/mnist-8/input_0.npy", "-o", folder + "/a")
    var values = image.doubles.map(Float.init)
    values[values.count - 1] += 255
    try NPY.write(NPYArray(shape: image.shape, floats: values), to: folder + "/corner.npy")
    let changed = try CLIRunner.run("run", Self.mnist, "--input", "Input3=" + folder + "/corner.npy", "-o", folder + "/b")
    #expect(plain.status == 0 && changed.status == 0)
    let a = try NPY.read(folder + "/a/Plus214_Output_0.npy").doubles, b = try NPY.read(folder + "/b/Plus214_Output_0.npy").doubles
    #expect(zip(a, b).map { abs($0 - $1) }.max()! > 0.1)
  }
}
