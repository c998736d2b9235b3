#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization

/// The temporary files this process has open for `AtomicFileWriter`, so
/// that none outlives the process: SIGINT, SIGTERM and SIGHUP remove them
/// all before the process exits (with 128 + the signal's number), and a
/// later process writing into the same folder removes those whose process
/// is gone (killed with SIGKILL, say).
///
/// Names are `.atrous-<pid>-<random>-<name>.tmp` (and `...-replaced.tmp`
/// for an old output moved aside): the fixed prefix and the process id
/// tell a stale file from a live one.
public enum TemporaryFiles {
  static let prefix = ".atrous-"
  nonisolated(unsafe) private static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
    let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    pthread_mutex_init(lock, nil)
    return lock
  }()
  nonisolated(unsafe) private static var live: Set<String> = []
  nonisolated(unsafe) private static var swept: Set<String> = []

  /// The temporary name for `name` in `folder` ("" or ending in "/").
  static func name(for name: String, in folder: String) -> String {
    folder + prefix + "\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))-\(name).tmp"
  }

  /// Records a temporary file; the first in a folder also removes the
  /// folder's stale ones.
  static func register(_ path: String, in folder: String) {
    pthread_mutex_lock(lock)
    live.insert(path)
    let first = swept.insert(folder).inserted
    pthread_mutex_unlock(lock)
    if first { removeStale(in: folder) }
  }

  /// Forgets a temporary file that was renamed or removed.
  static func unregister(_ path: String) {
    locked { forget(path) }
  }

  /// `unregister` for a caller that holds the lock.
  static func forget(_ path: String) {
    live.remove(path)
  }

  /// Runs `body` with the lock held, so the signal thread waits for it:
  /// renames that must all happen or none happen there.
  static func locked<R>(_ body: () throws -> R) rethrows -> R {
    pthread_mutex_lock(lock)
    defer { pthread_mutex_unlock(lock) }
    return try body()
  }

  /// `register` for a caller that holds the lock.
  static func remember(_ path: String) {
    live.insert(path)
  }

  /// Removes the registered temporary file `path` on a thread of its own.
  /// Freeing a large file's blocks can wait for the disk (12 ms for a
  /// 38.5 MB file on a file system mounted with `discard`), which need
  /// not hold up the run; the process waits for the removals when it exits.
  /// At most `removalSlots` files wait at once, so that a disk slower to
  /// free than a batch is to write does not fill up with old outputs.
  static func removeLater(_ path: String) {
    if !removalsWaitAtExit.exchange(true, ordering: .relaxed) { atexit { TemporaryFiles.finishRemovals() } }
    // Never called with the lock held: the remover takes it to forget
    // each file, and a caller waiting here for a slot must not stop it.
    removalSlots.wait()
    removals.enter()
    remover.async {
      unlink(path)
      unregister(path)
      removalSlots.signal()
      removals.leave()
    }
  }

  /// Waits until the files `removeLater` queued are gone (the process
  /// does so when it exits).
  public static func finishRemovals() {
    removals.wait()
  }

  private static let remover = DispatchQueue(label: "atrous.temporary-file-remover")
  private static let removals = DispatchGroup()
  private static let removalSlots = DispatchSemaphore(value: 8)
  private static let removalsWaitAtExit = Atomic<Bool>(false)

  /// Removes `folder`'s temporary files whose process no longer runs.
  static func removeStale(in folder: String) {
    guard let names = try? FileIO.listFolder(folder.isEmpty ? "." : folder) else { return }
    for name in names where name.hasPrefix(prefix) && name.hasSuffix(".tmp") {
      let digits = name.dropFirst(prefix.count).prefix { $0.isNumber }
      guard let pid = Int32(digits), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
      unlink(folder + name)
    }
  }

  /// From the calling thread, before any other thread exists: SIGINT,
  /// SIGTERM and SIGHUP are blocked in every thread and taken by one that
  /// waits for them, removes the live temporary files and ends the
  /// process with 128 + the signal's number. (Waiting for the signals on a
  /// thread, rather than in a handler, lets the cleanup take the lock.)
  public static func removeOnSignals() {
    var signals = cleanupSignals()
    pthread_sigmask(SIG_BLOCK, &signals, nil)
    var thread = pthread_t()
    let started = pthread_create(&thread, nil, { _ in
      var signals = TemporaryFiles.cleanupSignals()
      var received: Int32 = 0
      while sigwait(&signals, &received) != 0 {}
      pthread_mutex_lock(TemporaryFiles.lock)
      for path in TemporaryFiles.live { unlink(path) }
      _exit(128 + received)
    }, nil)
    if started == 0 { pthread_detach(thread) }
  }

  /// SIGINT, SIGTERM and SIGHUP, the signals that end a run cleanly.
  private static func cleanupSignals() -> sigset_t {
    var signals = sigset_t()
    sigemptyset(&signals)
    for signal in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&signals, signal) }
    return signals
  }
}
