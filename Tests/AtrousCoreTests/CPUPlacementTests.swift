import _CKernels
import Testing

/// Moving a thread off a CPU, as the pool's workers and the fault-ahead
/// thread do as they start (see `WorkerPool`).
@Suite struct CPUPlacementTests {
  /// A thread that steps off the CPU it runs on is on another one right
  /// after, with its affinity mask as it was (the scheduler may move it
  /// back later); a CPU outside the mask changes nothing.
  @Test func steppingOffMovesTheThreadAndKeepsItsMask() {
    let cpus = atr_affinity_cpus(), before = atr_current_cpu()
    guard cpus > 0, before >= 0 else { return }  // the system does not say
    let moved = atr_step_off_cpu(before)
    if cpus >= 2 {
      #expect(moved == 0)
      #expect(atr_current_cpu() != before, "still on CPU \(before)")
    } else {
      #expect(moved == -1, "the only CPU of the mask")
    }
    #expect(atr_affinity_cpus() == cpus, "the mask put back")
    #expect(atr_step_off_cpu(-1) == -1)
    #expect(atr_step_off_cpu(1 << 20) == -1)
    #expect(atr_affinity_cpus() == cpus)
  }
}
