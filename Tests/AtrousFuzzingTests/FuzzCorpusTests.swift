import AtrousFuzzing
import AtrousIO
import AtrousTestSupport
import Foundation
import Testing

/// The fuzzing corpora replayed through the same entry points the harnesses
/// call (Fuzz/): every input that once crashed (Fuzz/Regressions) and every
/// committed seed (Fuzz/Seeds) must run to its end. A trap ends the test
/// process, which fails the run.
@Suite struct FuzzCorpusTests {
  static func files(_ folder: String) -> [String] {
    let path = Fixtures.repository + "/Fuzz/" + folder
    let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    return names.filter { !$0.hasPrefix(".") }.sorted().map { path + "/" + $0 }
  }

  @Test(arguments: FuzzTarget.allCases) func corpusRuns(_ target: FuzzTarget) throws {
    let inputs = Self.files("Regressions/" + target.rawValue) + Self.files("Seeds/" + target.rawValue)
    for input in inputs { target.run(try FileIO.readAll(input)) }
  }

  /// Every target has its dictionary, and every regression folder names a
  /// target, so `Fuzz/run` and this test cover the same set.
  @Test func foldersMatchTargets() {
    let names = Set(FuzzTarget.allCases.map(\.rawValue))
    #expect(Set(Self.files("Dictionaries").map { ($0 as NSString).lastPathComponent.replacingOccurrences(of: ".dict", with: "") }) == names)
    for folder in Self.files("Regressions") { #expect(names.contains((folder as NSString).lastPathComponent)) }
  }
}
