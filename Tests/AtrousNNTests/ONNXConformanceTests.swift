import AtrousIO
import AtrousNN
import AtrousONNX
import AtrousTestSupport
import Foundation
import Testing

/// ONNX's own operator tests and light models (Tests/Fixtures/onnx-node):
/// each model run on its stored inputs must give its stored outputs within
/// the test's tolerance (index.csv; data.json for the light models).
@Suite struct ONNXConformanceTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var rtol: Float
    var atol: Float
    var testDescription: String { name }
  }

  static let cases: [Case] = {
    let folder = Fixtures.path("onnx-node")
    guard let text = try? FileIO.readAll(folder + "/index.csv") else { return [] }
    var tolerances: [String: (Float, Float)] = [:]
    for row in csvRows(String(decoding: text, as: UTF8.self)).dropFirst() where row.count > 11 {
      tolerances[row[0]] = (Float(row[10]) ?? 1e-3, Float(row[11]) ?? 1e-7)
    }
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter {
      FileIO.isDirectory(folder + "/" + $0)
    }.sorted()
    return names.map { name in
      var (rtol, atol) = tolerances[name] ?? (1e-3, 1e-7)
      if let data = FileManager.default.contents(atPath: "\(folder)/\(name)/data.json"),
        let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
      {
        rtol = (json["rtol"] as? Double).map(Float.init) ?? rtol
        atol = (json["atol"] as? Double).map(Float.init) ?? atol
      }
      return Case(name: name, rtol: rtol, atol: atol)
    }
  }()

  @Test func everyTestIsPresent() { #expect(Self.cases.count == 120) }

  @Test(arguments: cases)
  func matchesStoredOutputs(_ c: Case) {
    let outcome = ONNXBackendTest(folder: Fixtures.path("onnx-node/\(c.name)")).run(rtol: c.rtol, atol: c.atol)
    #expect(outcome == .passed)
  }
}
