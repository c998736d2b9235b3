import _CKernels

/// The cache sizes block and tile sizes follow, read from the system once
/// per process (32 KiB, 1 MiB and 8 MiB where it does not say; see
/// `atr_cache_l1d`).
public enum CPUCaches {
  /// Bytes of one core's level-1 data cache.
  public static let l1d = Int(atr_cache_l1d())
  /// Bytes of one core's level-2 cache.
  public static let l2 = Int(atr_cache_l2())
  /// Bytes of the last-level cache, shared by the cores.
  public static let l3 = Int(atr_cache_l3())

  /// Whether a pass that reads and writes `bytes` in all (input and
  /// output together) outgrows the last-level cache: the output's first
  /// lines are gone from it before anything reads them, so its stores are
  /// better sent past the caches than each line read in first.
  public static func passOutgrowsCache(bytes: Int) -> Bool { bytes > l3 }
}
