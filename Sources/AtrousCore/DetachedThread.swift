#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import _CKernels

/// Threads that run on their own to the end of their work or of the
/// process: the pool's workers, the fault-ahead thread.
enum DetachedThread {
  /// Starts `body` on a detached thread that first steps off `cpu` (the
  /// caller's, `atr_current_cpu()`; `atr_step_off_cpu`). A scheduler may
  /// put a new thread on its parent's CPU, where the two share it, each at
  /// half speed, until the load balancer moves one: on a 2-core virtual
  /// machine the first pool worker and the thread running a fresh
  /// process's model shared one core for 16 ms with the other idle, and
  /// the fault-ahead thread the parsing thread's for 4 ms in about half of
  /// the runs.
  /// - Returns: false when the system starts no thread (`body` never runs).
  @discardableResult
  static func start(awayFrom cpu: Int32, _ body: @escaping @Sendable () -> Void) -> Bool {
    final class Start {
      let cpu: Int32, body: @Sendable () -> Void
      init(_ cpu: Int32, _ body: @escaping @Sendable () -> Void) { (self.cpu, self.body) = (cpu, body) }
    }
    let context = Unmanaged.passRetained(Start(cpu, body)).toOpaque()
    var thread = pthread_t()
    let made = pthread_create(&thread, nil, { context in
      let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
      _ = atr_step_off_cpu(start.cpu)
      start.body()
      return nil
    }, context)
    guard made == 0 else {
      Unmanaged<Start>.fromOpaque(context).release()
      return false
    }
    pthread_detach(thread)
    return true
  }
}
