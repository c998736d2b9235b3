#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Files a command writes as one result (every output of a model run, a
/// hypercolumn array with its sidecar and preview, a folder of feature
/// maps): all of them appear, or none.
///
/// Inside `all`, `AtomicFileWriter.commit()` only closes its temporary
/// file. When the body returns, the group renames every file over its
/// target, holding the lock the signal thread needs, so SIGINT, SIGTERM or
/// SIGHUP finds either all temporary files (and removes them) or all
/// renamed. When the body throws, or a rename fails, the group removes its
/// temporary files and the targets it already renamed.
///
/// Files are renamed in the reverse of the order they were committed: a
/// command writes the files that describe others (sidecars, manifests)
/// last, so they appear first, and an array is never seen without its
/// description, even after SIGKILL or a power cut.
public final class OutputGroup: @unchecked Sendable {  // `pending` changes under TemporaryFiles' lock
  @TaskLocal static var current: OutputGroup?
  private var pending: [AtomicFileWriter] = []

  private init() {}

  /// Runs `body`, then commits every file it committed, or none. A group
  /// inside another joins the outer one.
  public static func all<R>(_ body: () throws -> R) throws -> R {
    if current != nil { return try body() }
    let group = OutputGroup()
    let result: R
    do {
      result = try $current.withValue(group) { try body() }
    } catch {
      TemporaryFiles.locked { for writer in group.pending { writer.removeClosed() } }
      throw error
    }
    try group.renameAll()
    return result
  }

  func add(_ writer: AtomicFileWriter) {
    TemporaryFiles.locked { pending.append(writer) }
  }

  private func renameAll() throws {
    var replaced: [String] = []
    defer { for path in replaced { TemporaryFiles.removeLater(path) } }
    try TemporaryFiles.locked {
      var renamed: [String] = []
      for (k, writer) in pending.reversed().enumerated() {
        do {
          if let old = try writer.rename() { replaced.append(old) }
          renamed.append(writer.path)
        } catch {
          for path in renamed { unlink(path) }
          for later in pending.reversed().dropFirst(k + 1) { later.removeClosed() }
          throw error
        }
      }
    }
  }
}
