import AtrousNN
import AtrousONNX
import AtrousTestSupport
import Foundation
import Testing

/// ONNX's own node tests for the supported operators, as the onnx package
/// generates them (Tests/Fixtures/onnx-ops, made by
/// Scripts/generate-onnx-node-tests.py): every test passes within its
/// tolerance, except that
/// - tests of element types Atrous does not hold (bfloat16, float8, 4- and
///   2-bit types) and training-mode tests must be refused with an error;
/// - tests in known-failures.txt must not pass yet (so the list shrinks
///   as they are fixed), and must not crash.
@Suite struct ONNXOperatorTests {
  struct Case: Sendable, CustomTestStringConvertible {
    enum Expectation: Sendable { case pass, refuse, knownFailure(String) }
    var name: String
    var rtol: Float
    var atol: Float
    var expectation: Expectation
    var testDescription: String { name }
  }

  static let folder = Fixtures.path("onnx-ops")

  /// Test names listed as not passing yet, with why.
  static let knownFailures: [String: String] = {
    guard let text = try? String(contentsOfFile: folder + "/known-failures.txt", encoding: .utf8) else { return [:] }
    var table: [String: String] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
      let parts = line.split(separator: " ", maxSplits: 1)
      if let name = parts.first { table[String(name)] = parts.count > 1 ? String(parts[1]) : "" }
    }
    return table
  }()

  static let cases: [Case] = {
    Fixtures.indexRows(folder, key: "tests").compactMap { test in
      guard let name = test["name"] as? String, let rtol = test["rtol"] as? Double, let atol = test["atol"] as? Double
      else { return nil }
      let unsupported = (test["unsupported_types"] as? [String]) ?? []
      let expectation: Case.Expectation = !unsupported.isEmpty || name.contains("training") ? .refuse
        : knownFailures[name].map { .knownFailure($0) } ?? .pass
      return Case(name: name, rtol: Float(rtol), atol: Float(atol), expectation: expectation)
    }
  }()

  @Test func fixturesArePresent() {
    #expect(!Self.cases.isEmpty, "no index.json in \(Self.folder)")
    let names = Set(Self.cases.map(\.name))
    for name in Self.knownFailures.keys { #expect(names.contains(name), "known failure \(name) is not a test") }
  }

  @Test(arguments: cases)
  func nodeTest(_ c: Case) {
    let outcome = ONNXBackendTest(folder: "\(Self.folder)/\(c.name)").run(rtol: c.rtol, atol: c.atol)
    switch (c.expectation, outcome) {
    case (.pass, .passed), (.refuse, .refused), (.knownFailure, .failed), (.knownFailure, .refused): break
    case (.knownFailure(let why), .passed): Issue.record("passes now: remove it from known-failures.txt (\(why))")
    default: Issue.record("\(outcome), expected to \(c.expectation)")
    }
  }
}
