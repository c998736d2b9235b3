import AtrousIO
import AtrousTestSupport
import Foundation
import Testing

/// Several outputs committed as one: all of them or none.
@Suite struct OutputGroupTests {
  struct Planned: Error {}

  @Test func allAppearWhenTheBodyReturns() throws {
    let folder = Fixtures.scratchFolder()
    try OutputGroup.all {
      try AtomicFileWriter.write([1], to: folder + "/a.npy")
      #expect(Fixtures.listing(folder).allSatisfy { $0.hasSuffix(".tmp") }, "nothing renamed before the end")
      try AtomicFileWriter.write([2], to: folder + "/a.json")
    }
    #expect(Fixtures.listing(folder) == ["a.json", "a.npy"])
    #expect(try FileIO.readAll(folder + "/a.npy") == [1])
  }

  /// A group that replaces more old files than may wait for removal at
  /// once: the new ones appear, and the old ones go.
  @Test func replacingManyFilesAtOnce() throws {
    let folder = Fixtures.scratchFolder()
    let names = (0..<20).map { "f\($0 < 10 ? "0" : "")\($0).bin" }
    for name in names { try AtomicFileWriter.write([1], to: folder + "/" + name) }
    try OutputGroup.all {
      for name in names { try AtomicFileWriter.write([2, 2], to: folder + "/" + name) }
    }
    TemporaryFiles.finishRemovals()
    #expect(Fixtures.listing(folder) == names)
    #expect(try names.allSatisfy { try FileIO.readAll(folder + "/" + $0) == [2, 2] })
  }

  /// A failure after some outputs were committed: none appears, and the
  /// files that were there before are untouched.
  @Test func noneAppearsWhenTheBodyThrows() throws {
    let folder = Fixtures.scratchFolder()
    try AtomicFileWriter.write([9], to: folder + "/a.npy")
    #expect(throws: Planned.self) {
      try OutputGroup.all {
        try AtomicFileWriter.write([1], to: folder + "/a.npy")
        try AtomicFileWriter.write([2], to: folder + "/b.npy")
        throw Planned()
      }
    }
    #expect(Fixtures.listing(folder) == ["a.npy"])
    #expect(try FileIO.readAll(folder + "/a.npy") == [9])
  }

  /// A rename that fails after others succeeded (its target became a
  /// folder meanwhile) takes back the ones already renamed; the last
  /// committed file is renamed first.
  @Test func aFailedRenameTakesBackTheOthers() throws {
    let folder = Fixtures.scratchFolder()
    #expect(throws: FileError.self) {
      try OutputGroup.all {
        try AtomicFileWriter.write([1], to: folder + "/array.npy")
        try AtomicFileWriter.write([2], to: folder + "/array.json")
        try FileManager.default.createDirectory(atPath: folder + "/array.npy", withIntermediateDirectories: false)
        _ = FileManager.default.createFile(atPath: folder + "/array.npy/x", contents: Data([3]))
      }
    }
    #expect(Fixtures.listing(folder) == ["array.npy"])
    #expect(Fixtures.listing(folder + "/array.npy") == ["x"])
  }

  /// A group inside another joins it.
  @Test func nestedGroupsCommitWithTheOuter() throws {
    let folder = Fixtures.scratchFolder()
    #expect(throws: Planned.self) {
      try OutputGroup.all {
        try OutputGroup.all { try AtomicFileWriter.write([1], to: folder + "/inner.npy") }
        throw Planned()
      }
    }
    #expect(Fixtures.listing(folder).isEmpty)
  }
}
