#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
import _CKernels

/// Writes a file so that it appears whole or not at all.
///
/// Bytes go to a hidden temporary file in the target's folder (same file
/// system, so the final rename is atomic); `commit()` renames it into the
/// target's place, moving an old file there aside first (it is removed on
/// another thread). A writer dropped without `commit()` removes its temporary file,
/// so a failed run leaves no half-written output and the old target intact;
/// `TemporaryFiles` removes it on SIGINT, SIGTERM and SIGHUP too, and a
/// later run removes one a killed process left.
/// Every file output of Atrous goes through this type.
public final class AtomicFileWriter {
  /// The file that `commit()` creates or replaces.
  public let path: String
  private let temporaryPath: String
  /// The temporary file, open for writing (an encoder writes to a duplicate).
  private(set) var fd: Int32
  private var finished = false

  /// Files of at least this many bytes (as `reserve` announces them) are
  /// written behind: each range `write(_:at:)` writes is sent to disk at
  /// once, and waited for and dropped from the page cache once
  /// `writeBehindWindow` bytes more are on their way. A smaller file fits
  /// in the dirty pages the kernel lets a writer keep, and is written out
  /// after the process, which need not wait; a larger one fills that
  /// allowance, and the kernel then holds the writer back in bursts while
  /// its disk idles between them. Writing 12 GB in 6 MiB chunks on an AMD
  /// EPYC virtual machine: 0.96 GB/s left to the kernel, 1.65 written
  /// behind (64 MiB on their way: 2.17 GB/s for 8 GB, against 1.98 with 12).
  public static let writeBehindBytes = 1 << 30
  static let writeBehindWindow = 64 << 20
  /// This writer's `writeBehindBytes` and `writeBehindWindow` (tests set
  /// smaller ones before `reserve`).
  var behindThreshold = writeBehindBytes, behindWindow = writeBehindWindow
  /// Whether this file is written behind (`reserve` decides).
  private(set) var writesBehind = false
  /// Ranges sent to disk and not yet waited for, oldest first, and their bytes.
  private let behind = Mutex<(ranges: [(start: Int, count: Int)], bytes: Int)>(([], 0))

  /// Creates the temporary file next to `path`.
  /// - Throws: `FileError.cannotWrite` when the folder is missing or read-only.
  public init(path: String) throws {
    self.path = path
    let slash = path.lastIndex(of: "/")
    let folder = slash.map { String(path[...$0]) } ?? ""
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard !name.isEmpty else { throw FileError.cannotWrite(path: path, reason: "the path names a folder") }
    if FileIO.isDirectory(path) { throw FileError.cannotWrite(path: path, reason: "is a directory") }
    var attempt = 0
    while true {
      let candidate = TemporaryFiles.name(for: name, in: folder)
      // 0666 less the umask, as a file made by any other program would get.
      let opened = open(candidate, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
      if opened >= 0 {
        fd = opened
        temporaryPath = candidate
        TemporaryFiles.register(candidate, in: folder)
        return
      }
      attempt += 1
      if errno != EEXIST || attempt > 16 {
        throw FileError.cannotWrite(path: path, reason: FileIO.lastError())
      }
    }
  }

  deinit {
    if !finished { discard() }
  }

  /// Appends bytes to the temporary file.
  /// - Throws: `FileError.cannotWrite` (disk full, I/O error).
  public func write(_ bytes: UnsafeRawBufferPointer) throws {
    precondition(!finished, "write after commit or discard")
    var offset = 0
    while offset < bytes.count {
      let written = writeToDescriptor(fd, bytes.baseAddress! + offset, bytes.count - offset)
      if written < 0 && errno == EINTR { continue }
      if written <= 0 {
        let reason = written < 0 ? FileIO.lastError() : "no progress writing"
        discard()
        throw FileError.cannotWrite(path: path, reason: reason)
      }
      offset += written
    }
  }

  /// Reserves disk space for the whole file, `byteCount` bytes, before any
  /// is written: a full disk then fails the output before the work that
  /// fills it, and the writes find their blocks allocated (a 38.5 MB file
  /// written in bands on ext4 took 0.85 of the time). The file reads as
  /// zeros up to `byteCount` until written.
  /// - Returns: false where the file system cannot reserve space (the
  ///   writes then allocate it as they go).
  /// - Throws: `FileError.cannotWrite` when the space is not there; the
  ///   temporary file is then removed.
  @discardableResult
  public func reserve(_ byteCount: Int) throws -> Bool {
    precondition(!finished, "reserve after commit or discard")
    writesBehind = byteCount >= behindThreshold
    var status: Int32
    repeat { status = atr_reserve_file(fd, Int64(byteCount)) } while status == EINTR
    switch status {
    case 0: return true
    case ENOSPC, EDQUOT, EFBIG:
      discard()
      throw FileError.cannotWrite(path: path, reason: "\(byteCount) bytes do not fit: " + String(cString: strerror(status)))
    default: return false
    }
  }

  /// Writes bytes at `offset` in the temporary file (holes read as
  /// zeros), so parts of a large file can be filled in any order, from
  /// several threads at once; a large file's are written behind (see
  /// `writeBehindBytes`).
  /// - Throws: `FileError.cannotWrite` (disk full, I/O error).
  public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
    precondition(!finished, "write after commit or discard")
    var done = 0
    while done < bytes.count {
      let written = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
      if written < 0 && errno == EINTR { continue }
      if written <= 0 {
        throw FileError.cannotWrite(path: path, reason: written < 0 ? FileIO.lastError() : "no progress writing")
      }
      done += written
    }
    if writesBehind { try writeBehind(offset..<(offset + bytes.count)) }
  }

  /// Sends `range` to disk, and waits for the oldest ranges sent while more
  /// than `behindWindow` bytes after them are on their way, dropping
  /// their pages. Only a failed write is an error: a system that cannot
  /// do either leaves the writing to the kernel.
  private func writeBehind(_ range: Range<Int>) throws {
    _ = atr_start_writeback(fd, Int64(range.lowerBound), Int64(range.count))
    let settled = behind.withLock { state in
      state.ranges.append((range.lowerBound, range.count))
      state.bytes += range.count
      var settled: [(start: Int, count: Int)] = []
      while let oldest = state.ranges.first, state.bytes - oldest.count >= behindWindow {
        settled.append(state.ranges.removeFirst())
        state.bytes -= oldest.count
      }
      return settled
    }
    for range in settled where atr_settle_range(fd, Int64(range.start), Int64(range.count)) == EIO {
      throw FileError.cannotWrite(path: path, reason: String(cString: strerror(EIO)))
    }
  }

  public func write(_ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { try write($0) }
  }

  /// Closes the temporary file and renames it over `path`. Inside
  /// `OutputGroup.all` it only closes it: the group renames its files
  /// together at the end.
  /// - Throws: `FileError.cannotWrite`; the temporary file is then removed.
  public func commit() throws {
    try close()
    if let group = OutputGroup.current {
      group.add(self)
      return
    }
    let replaced = try TemporaryFiles.locked { try rename() }
    if let replaced { TemporaryFiles.removeLater(replaced) }
  }

  /// Closes the temporary file, whose bytes are then all written.
  func close() throws {
    precondition(!finished, "commit after commit or discard")
    finished = true
    if closeDescriptor(fd) != 0 {
      let reason = FileIO.lastError()
      unlink(temporaryPath)
      TemporaryFiles.unregister(temporaryPath)
      throw FileError.cannotWrite(path: path, reason: reason)
    }
  }

  /// Renames the closed temporary file over `path`; the caller holds
  /// `TemporaryFiles`' lock, so a signal sees the file either still
  /// temporary or renamed and forgotten. Returns the old file, moved aside,
  /// for the caller to hand to `TemporaryFiles.removeLater` once it has
  /// let go of the lock.
  func rename() throws -> String? {
    defer { TemporaryFiles.forget(temporaryPath) }
    // A rename that replaces a regular file makes ext4 (auto_da_alloc)
    // write the new file's data to disk before returning: 35 to 58 ms for
    // a 38.5 MB array. So the old file is first moved aside, under a
    // temporary name, and removed on another thread; the rename then
    // takes a free name and returns at once, as on a first run. The old
    // file is an output the user named, so nothing is lost that the
    // rename would have kept.
    var status = stat(), replaced: String?
    if lstat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG {
      let aside = String(temporaryPath.dropLast(4)) + "-replaced.tmp"
      if renameFile(path, aside) == 0 {
        replaced = aside
        TemporaryFiles.remember(aside)
      }
    }
    if renameFile(temporaryPath, path) != 0 {
      let reason = FileIO.lastError()
      unlink(temporaryPath)
      if let replaced, renameFile(replaced, path) == 0 { TemporaryFiles.forget(replaced) }
      throw FileError.cannotWrite(path: path, reason: reason)
    }
    return replaced
  }

  /// Removes the closed temporary file (a group's member that was not
  /// renamed); the caller holds `TemporaryFiles`' lock.
  func removeClosed() {
    unlink(temporaryPath)
    TemporaryFiles.forget(temporaryPath)
  }

  /// Removes the temporary file; `path` is left as it was.
  public func discard() {
    guard !finished else { return }
    finished = true
    _ = closeDescriptor(fd)
    unlink(temporaryPath)
    TemporaryFiles.unregister(temporaryPath)
  }

  /// Writes `bytes` to `path` atomically.
  public static func write(_ bytes: [UInt8], to path: String) throws {
    let writer = try AtomicFileWriter(path: path)
    try writer.write(bytes)
    try writer.commit()
  }
}

/// `write(2)`, `close(2)` and `rename(2)`, named apart from the writer's
/// own methods.
private func writeToDescriptor(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
  write(fd, bytes, count)
}

private func closeDescriptor(_ fd: Int32) -> Int32 {
  close(fd)
}

private func renameFile(_ from: String, _ to: String) -> Int32 {
  rename(from, to)
}
