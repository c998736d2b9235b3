import AtrousCore
import AtrousIO
import AtrousNN
import AtrousONNX
import AtrousTestSupport
import Testing

/// The two trained models against their stored ONNX Runtime outputs, with
/// the kernels of every instruction set the CPU has.
@Suite struct RealModelTests {
  @Test(arguments: 0...2, InstructionSet.available)
  func mnistMatchesReference(set: Int, isa: InstructionSet) throws {
    try InstructionSet.with(isa) { try checkMNIST(set: set) }
  }

  func checkMNIST(set: Int) throws {
    let graph = try ONNXModel.load(Fixtures.model("mnist-8"))
    let executor = try Executor(graph: graph)
    let input = NDArray(try NPY.read(Fixtures.path("models/mnist-8/input_\(set).npy")))
    let expected = NDArray(try NPY.read(Fixtures.path("models/mnist-8/output_\(set).npy")))
    let output = try #require(try executor.run([executor.inputNames[0]: input])[graph.outputs[0]])
    #expect(output.shape == [1, 10])
    let check = closeness(output.floatValues(), expected.floatValues(), rtol: 1e-3, atol: 1e-5)
    #expect(check.isClose, "\(check)")
  }

  @Test(arguments: InstructionSet.available)
  func ppocrDetectorMatchesReference(isa: InstructionSet) throws {
    try InstructionSet.with(isa) { try checkDetector() }
  }

  func checkDetector() throws {
    let graph = try ONNXModel.load(Fixtures.model("ppocrv4-det"))
    let executor = try Executor(graph: graph)
    let input = NDArray(try NPY.read(Fixtures.path("models/ppocrv4-det/input_0.npy")))
    let expected = NDArray(try NPY.read(Fixtures.path("models/ppocrv4-det/output_0.npy")))
    let output = try #require(try executor.run([executor.inputNames[0]: input])[graph.outputs[0]])
    #expect(output.shape == [1, 1, 384, 768])
    let check = closeness(output.floatValues(), expected.floatValues(), rtol: 1e-3, atol: 1e-4)
    #expect(check.isClose, "\(check)")
  }
}
