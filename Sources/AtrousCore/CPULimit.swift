import _CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The cores this process may use: the CPUs of its affinity mask (what
/// `taskset`, Slurm's and Kubernetes' CPU sets allow), fewer when a
/// cgroup CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us`) grants less time
/// than that, rounded up; never fewer than one. The machine's online CPU
/// count is only the fallback.
public enum CPULimit {
  public static let available: Int = {
    let quota = cgroupQuota()
    return cores(affinity: affinityCount(), online: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), quota: quota)
  }()

  /// The rule, apart from the machine: `quota` in CPUs (1.5 for 150000
  /// of 100000 microseconds).
  public static func cores(affinity: Int?, online: Int, quota: Double?) -> Int {
    var count = affinity ?? online
    if let quota, quota > 0 { count = min(count, Int(quota.rounded(.up))) }
    return max(1, count)
  }

  /// CPUs of a cgroup quota file: v2 "150000 100000" (or "max 100000": no
  /// quota), v1 the quota alone over `period`.
  public static func quota(cpuMax text: String) -> Double? {
    let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
    guard parts.count == 2, let quota = Double(parts[0]), let period = Double(parts[1]), quota > 0, period > 0 else { return nil }
    return quota / period
  }

  private static func affinityCount() -> Int? {
    let count = Int(atr_affinity_cpus())
    return count > 0 ? count : nil
  }

  private static func cgroupQuota() -> Double? {
    if let text = readLine("/sys/fs/cgroup/cpu.max") { return quota(cpuMax: text) }
    if let q = readLine("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), let p = readLine("/sys/fs/cgroup/cpu/cpu.cfs_period_us") {
      return quota(cpuMax: q.filter { !$0.isNewline } + " " + p)
    }
    return nil
  }

  private static func readLine(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 128)
    guard fgets(&buffer, 128, file) != nil else { return nil }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
