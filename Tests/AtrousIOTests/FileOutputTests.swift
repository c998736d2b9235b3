#if canImport(Glibc)
import Glibc
#endif
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
    // The old file is removed on another thread, once it is out of the way.
    TemporaryFiles.finishRemovals()
    #expect(Fixtures.listing(folder) == ["out.bin"])
  }

  /// A link in the target's place is replaced, as a rename replaces it;
  /// the file it points to is left as it was.
  @Test func commitReplacesALinkNotItsFile() throws {
    let folder = Fixtures.scratchFolder()
    try AtomicFileWriter.write([1, 2, 3], to: folder + "/kept.bin")
    #expect(symlink("kept.bin", folder + "/out.bin") == 0)
    try AtomicFileWriter.write([4, 5], to: folder + "/out.bin")
    TemporaryFiles.finishRemovals()
    #expect(try FileIO.readAll(folder + "/out.bin") == [4, 5])
    #expect(try FileIO.readAll(folder + "/kept.bin") == [1, 2, 3])
    #expect(Fixtures.listing(folder) == ["kept.bin", "out.bin"])
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

  /// Space reserved up front: the bytes written over it are the file's,
  /// the rest reads as zeros; a reservation the disk cannot hold fails
  /// the output at once and leaves neither the target nor a temporary.
  @Test func reservedSpaceHoldsTheWritesAndTooMuchFailsAtOnce() throws {
    let folder = Fixtures.scratchFolder()
    let path = folder + "/out.bin"
    let writer = try AtomicFileWriter(path: path)
    let reserved = try writer.reserve(4096)
    try [UInt8](repeating: 7, count: 100).withUnsafeBytes { try writer.write($0, at: 10) }
    try writer.commit()
    let bytes = try FileIO.readAll(path)
    #expect(bytes.count == (reserved ? 4096 : 110))
    #expect(bytes[..<10].allSatisfy { $0 == 0 } && bytes[10..<110].allSatisfy { $0 == 7 } && bytes[110...].allSatisfy { $0 == 0 })
    // Where the file system reserves space at all, an exabyte is refused.
    guard reserved else { return }
    let other = try AtomicFileWriter(path: folder + "/huge.bin")
    #expect(throws: FileError.self) { try other.reserve(1 << 60) }
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

  /// A batch's inputs, checked once: other spellings and hard links of
  /// an input are refused, new and unrelated files pass.
  @Test func inputFilesRefuseEveryNameOfAnInput() throws {
    let folder = Fixtures.scratchFolder()
    try AtomicFileWriter.write([1], to: folder + "/a")
    try AtomicFileWriter.write([2], to: folder + "/b")
    try AtomicFileWriter.write([3], to: folder + "/other")
    #expect(link(folder + "/b", folder + "/b-link") == 0)
    let inputs = InputFiles([folder + "/a", folder + "/b", folder + "/missing"])
    for output in [folder + "/./a", folder + "/b-link", folder + "/../" + folder.split(separator: "/").last! + "/b"] {
      #expect(throws: FileError.outputIsInput(path: output)) { try inputs.ensureNotReplaced(by: output) }
    }
    try inputs.ensureNotReplaced(by: folder + "/other")
    try inputs.ensureNotReplaced(by: folder + "/new")
  }

  @Test func readingAFolderOrMissingFileFails() {
    #expect(throws: FileError.self) { try FileIO.readAll("/tmp") }
    #expect(throws: FileError.self) { try FileIO.readAll("/tmp/definitely-not-here-\(UInt32.random(in: 0...UInt32.max))") }
  }
}
