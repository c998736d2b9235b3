import AtrousNN
import FoundationEssentials

/// One test in the layout of ONNX's backend tests: a folder with
/// `model.onnx`, its inputs `input_K.pb` (fed to the graph inputs that are
/// not initializers, in order) and expected outputs `output_K.pb`, each a
/// serialized TensorProto, beside the model or in `test_data_set_0/`.
public struct ONNXBackendTest: Sendable {
  public enum Outcome: Sendable, Equatable {
    case passed
    /// Ran, but an output differs; the reason names the output and how.
    case failed(String)
    /// Refused with an error (an unsupported op, attribute or type).
    case refused(String)
  }

  public let folder: String

  public init(folder: String) {
    self.folder = folder
  }

  /// Runs the model on the stored inputs and compares every output: same
  /// shape and element type, floats within `atol + rtol * |expected|`
  /// (NaN matching NaN, infinities matching exactly), integers exactly.
  public func run(rtol: Float, atol: Float, threads: Int = 1) -> Outcome {
    do {
      let graph = try ONNXModel.load(folder + "/model.onnx")
      let executor = try Executor(graph: graph, threads: threads)
      var inputs: [String: NDArray] = [:]
      for (index, name) in executor.inputNames.enumerated() {
        inputs[name] = try tensor("input_\(index)")
      }
      let outputs = try executor.run(inputs)
      for (index, name) in graph.outputs.enumerated() {
        let expected = try tensor("output_\(index)")
        guard let actual = outputs[name] else { return .failed("output \(name) missing") }
        if let difference = Self.difference(actual, expected, rtol: rtol, atol: atol) {
          return .failed("output \(name): \(difference)")
        }
      }
      return .passed
    } catch {
      return .refused("\(error)")
    }
  }

  private func tensor(_ name: String) throws -> NDArray {
    let nested = "\(folder)/test_data_set_0/\(name).pb"
    let path = FileManager.default.fileExists(atPath: nested) ? nested : "\(folder)/\(name).pb"
    return try ONNXModel.tensor(Data(contentsOf: URL(fileURLWithPath: path)))
  }

  /// Why `actual` does not match `expected`, or nil when it does.
  public static func difference(_ actual: NDArray, _ expected: NDArray, rtol: Float, atol: Float) -> String? {
    guard actual.shape == expected.shape else { return "shape \(actual.shape), expected \(expected.shape)" }
    guard actual.dtype == expected.dtype else { return "type \(actual.dtype), expected \(expected.dtype)" }
    if !expected.dtype.isFloatingPoint {
      let (a, e) = (actual.standard().int64Values(), expected.int64Values())
      if let i = a.indices.first(where: { a[$0] != e[$0] }) { return "element \(i) is \(a[i]), expected \(e[i])" }
      return nil
    }
    let (a, e) = (actual.floatValues(), expected.floatValues())
    var worst: (index: Int, excess: Float)? = nil
    for i in a.indices {
      let (x, y) = (a[i], e[i])
      if x.isNaN && y.isNaN { continue }
      if y.isInfinite || x.isInfinite {
        if x != y { return "element \(i) is \(x), expected \(y)" }
        continue
      }
      let excess = Swift.abs(x - y) - (atol + rtol * Swift.abs(y))
      if !(excess <= 0) && excess > (worst?.excess ?? -1) { worst = (i, excess.isNaN ? .infinity : excess) }
    }
    if let (i, _) = worst { return "element \(i) is \(a[i]), expected \(e[i]) (rtol \(rtol), atol \(atol))" }
    return nil
  }
}
