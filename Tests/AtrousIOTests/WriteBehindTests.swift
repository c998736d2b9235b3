#if canImport(Glibc)
import Glibc
#endif
@testable import AtrousIO
import AtrousTestSupport
import Testing

/// A large file written in ranges goes to disk as it is written: its bytes
/// are the ones written, and the ranges well behind the last one are on
/// disk and out of the page cache by the time it is committed.
@Suite struct WriteBehindTests {
  @Test func rangesBehindTheWindowLeaveThePageCache() throws {
    let folder = Fixtures.scratchFolder()
    let path = folder + "/out.bin"
    let (piece, pieces) = (256 << 10, 32)  // 8 MiB in pieces, 1 MiB on their way
    let writer = try AtomicFileWriter(path: path)
    (writer.behindThreshold, writer.behindWindow) = (1 << 20, 1 << 20)
    try writer.reserve(100 + piece * pieces)
    #expect(writer.writesBehind)
    for index in 0..<pieces {
      let bytes = [UInt8](repeating: UInt8(index + 1), count: piece)
      try bytes.withUnsafeBytes { try writer.write($0, at: 100 + index * piece) }
    }
    try writer.commit()
    let written = try FileIO.readAll(path)
    #expect(written.count == 100 + piece * pieces && written.prefix(100).allSatisfy { $0 == 0 })
    #expect((0..<pieces).allSatisfy { index in
      written[(100 + index * piece)..<(100 + (index + 1) * piece)].allSatisfy { $0 == UInt8(index + 1) }
    })
    #expect(!(try AtomicFileWriter(path: folder + "/small.bin")).writesBehind, "none before a reservation")

    // Runs written out of order and off page boundaries, as tiles of a
    // hypercolumn export write their rows: the partial pages kept between
    // them are written again by their neighbours, whole.
    let runs = try AtomicFileWriter(path: folder + "/runs.bin")
    (runs.behindThreshold, runs.behindWindow) = (1 << 20, 1 << 20)
    let run = 300_001, count = 24
    try runs.reserve(128 + run * count)
    for index in (0..<count).map({ ($0 * 7) % count }) {
      try [UInt8](repeating: UInt8(index + 1), count: run).withUnsafeBytes { try runs.write($0, at: 128 + index * run) }
    }
    try runs.commit()
    let read = try FileIO.readAll(folder + "/runs.bin")
    #expect(read.count == 128 + run * count)
    #expect((0..<count).allSatisfy { index in
      read[(128 + index * run)..<(128 + (index + 1) * run)].allSatisfy { $0 == UInt8(index + 1) }
    })

    // Reading the file back above brought its pages in again: a second
    // file, checked without reading it, shows what the writes left cached.
    let second = folder + "/second.bin"
    let other = try AtomicFileWriter(path: second)
    (other.behindThreshold, other.behindWindow) = (1 << 20, 1 << 20)
    try other.reserve(piece * pieces)
    let bytes = [UInt8](repeating: 5, count: piece)
    for index in 0..<pieces { try bytes.withUnsafeBytes { try other.write($0, at: index * piece) } }
    try other.commit()
    let length = piece * pieces
    guard try dropsPages(folder + "/probe.bin") else { return }  // a file system in memory keeps them
    let resident = try residency(second, bytes: length)
    let settledPages = (length - 2 * (1 << 20)) / 4096  // all but the window and the last piece or so
    let cached = resident.prefix(settledPages).filter { $0 }.count
    #expect(cached == 0, "\(cached) of the first \(settledPages) pages still cached")
  }

  /// Which pages of the first `bytes` of the file at `path` are cached.
  private func residency(_ path: String, bytes: Int) throws -> [Bool] {
    let fd = open(path, O_RDONLY)
    defer { close(fd) }
    let mapped = try #require(mmap(nil, bytes, PROT_READ, MAP_SHARED, fd, 0))
    #expect(mapped != MAP_FAILED)
    defer { munmap(mapped, bytes) }
    var resident = [UInt8](repeating: 0, count: bytes / 4096)
    #expect(mincore(mapped, bytes, &resident) == 0)
    return resident.map { $0 & 1 == 1 }
  }

  /// Whether the folder's file system drops a file's pages written to
  /// disk when asked (tmpfs, whose pages are the file, does not).
  private func dropsPages(_ path: String) throws -> Bool {
    try AtomicFileWriter.write([UInt8](repeating: 1, count: 1 << 16), to: path)
    let fd = open(path, O_RDONLY)
    defer { close(fd) }
    _ = fsync(fd)
    _ = posix_fadvise(fd, 0, 1 << 16, POSIX_FADV_DONTNEED)
    return try residency(path, bytes: 1 << 16).allSatisfy { !$0 }
  }
}
