import AtrousIO
import AtrousTestSupport
import Testing

@Suite struct FileOutputTests {
  @Test func commitReplacesTheTargetWhole() throws {
    let folder = Fixtures.scratchFolder()
    let path = folder + "/out.bin"
    try AtomicFileWriter.write([1, 2, 3], to: path)
    try AtomicFileWriter.write([4, 5], to: path)
    #expect(try FileIO.readAll(path) == [4, 5])
    #expect(Fixtures.listing(folder) == ["out.bin"])
  }

  @Test func abandonedWriteLeavesTheOldFileAndNoTemporary() throws {
    let folder = Fixtures.scratchFolder()
    let path = folder + "/out.bin"
    try AtomicFileWriter.write([9, 9, 9], to: path)
    do {
      let writer = try AtomicFileWriter(path: path)
      try writer.write([1, 2, 3, 4])
      #expect(Fixtures.listing(folder).count == 2)
      // Dropped without commit, as when encoding fails halfway.
    }
    #expect(try FileIO.readAll(path) == [9, 9, 9])
    #expect(Fixtures.listing(folder) == ["out.bin"])
  }

  @Test func missingFolderIsAClearError() {
    #expect(throws: FileError.self) { try AtomicFileWriter.write([1], to: "/nonexistent-folder/x.bin") }
  }

  @Test func outputThatIsAnInputIsRefused() throws {
    let folder = Fixtures.scratchFolder()
    try AtomicFileWriter.write([1], to: folder + "/a")
    #expect(throws: FileError.outputIsInput(path: folder + "/./a")) {
      try FileIO.ensure(output: folder + "/./a", isNotOneOf: [folder + "/a"])
    }
    try FileIO.ensure(output: folder + "/b", isNotOneOf: [folder + "/a"])
  }

  @Test func readingAFolderOrMissingFileFails() {
    #expect(throws: FileError.self) { try FileIO.readAll("/tmp") }
    #expect(throws: FileError.self) { try FileIO.readAll("/tmp/definitely-not-here-\(UInt32.random(in: 0...UInt32.max))") }
  }
}
