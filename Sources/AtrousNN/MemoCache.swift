#if canImport(Glibc)
import Glibc
#endif

/// Values made once and kept, by key, for every thread of a process: the
/// executor's prepared weights, plans and rewritten graphs.
final class MemoCache<Key: Hashable, Value>: @unchecked Sendable {
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private var store: [Key: Value] = [:]

  init() { pthread_mutex_init(mutex, nil) }

  deinit {
    pthread_mutex_destroy(mutex)
    mutex.deallocate()
  }

  /// The value kept for `key`, made by `make` the first time (under the
  /// lock, so it is made once).
  func value(_ key: Key, make: () throws -> Value) rethrows -> Value {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    if let found = store[key] { return found }
    let made = try make()
    store[key] = made
    return made
  }
}
