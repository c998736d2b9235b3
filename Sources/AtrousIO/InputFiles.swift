#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The files a command reads, which none of its outputs may replace (same
/// device and inode, so links and other spellings of a path count).
///
/// The inputs' identities are read once, when the first output that
/// already exists is checked: a batch that replaces N outputs makes N + the
/// inputs' count `stat` calls, not N times the inputs' count. A run whose
/// outputs are all new reads none.
public final class InputFiles: Sendable {
  private struct Identity: Hashable {
    let device: UInt64
    let inode: UInt64
  }

  private let paths: [String]
  private let identities = Mutex<Set<Identity>?>(nil)

  public init(_ paths: [String]) {
    self.paths = paths
  }

  /// Refuses `output` when it is one of the inputs.
  /// - Throws: `FileError.outputIsInput`.
  public func ensureNotReplaced(by output: String) throws {
    var target = stat()
    guard stat(output, &target) == 0 else { return }
    let inputs = identities.withLock { known in
      if known == nil {
        known = Set(paths.compactMap { path in
          var source = stat()
          return stat(path, &source) == 0 ? Self.identity(source) : nil
        })
      }
      return known!
    }
    if inputs.contains(Self.identity(target)) { throw FileError.outputIsInput(path: output) }
  }

  private static func identity(_ status: stat) -> Identity {
    Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
  }
}
