import AtrousCore
import AtrousFilters
import AtrousIO
import AtrousTestSupport
import Foundation
import Testing

/// Each filter against OpenCV's (or SciPy's) output for the same float32
/// input, stored by make_fixtures.py: equal within 1e-4 of the output's range.
@Suite struct OpenCVParityTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var file: String
    var input: String
    var filter: String
    var testDescription: String { "\(file): \(filter)" }
  }

  static let cases: [Case] = {
    guard let data = FileManager.default.contents(atPath: Fixtures.path("filters/manifest.json")),
      let manifest = try? JSONSerialization.jsonObject(with: data) as? [String: [String: String]]
    else { return [] }
    return manifest.keys.sorted().map { Case(file: $0, input: manifest[$0]!["input"]!, filter: manifest[$0]!["filter"]!) }
  }()

  @Test func fixturesArePresent() { #expect(Self.cases.count == 46) }

  /// With the kernels of every instruction set the CPU has.
  @Test(arguments: cases, InstructionSet.available)
  func matchesReference(_ c: Case, isa: InstructionSet) throws {
    try InstructionSet.with(isa) { try check(c) }
  }

  func check(_ c: Case) throws {
    let input = try NPY.read(Fixtures.path("filters/\(c.input)")).tensor()
    let expected = try NPY.read(Fixtures.path("filters/\(c.file)")).tensor()
    let output = try FilterChain([FilterSpec.parse(c.filter)]).apply(to: input)
    let range = expected.scalars.map(abs).max() ?? 1
    let check = closeness(output, expected, rtol: 1e-4, atol: 1e-4 * range)
    #expect(check.isClose, "\(check)")
  }
}
