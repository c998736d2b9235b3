import AtrousCore
import FoundationEssentials
import Testing

/// The cache sizes blocks follow, against the kernel's own description of
/// cpu0's caches where the machine has one: on a virtual machine the C
/// library may report the whole package's last-level cache instead of the
/// slice one core reaches.
@Suite struct CPUCachesTests {
  /// The size of cpu0's data or unified cache of `level`, in bytes, from
  /// sysfs; nil where it is not described.
  static func described(level: Int) -> Int? {
    for index in 0..<8 {
      let folder = "/sys/devices/system/cpu/cpu0/cache/index\(index)/"
      func read(_ name: String) -> String? {
        FileManager.default.contents(atPath: folder + name).map {
          String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
      }
      guard let text = read("level") else { return nil }
      guard Int(text) == level, read("type") != "Instruction", var size = read("size") else { continue }
      var unit = 1
      if size.hasSuffix("K") { unit = 1 << 10 } else if size.hasSuffix("M") { unit = 1 << 20 }
      if unit > 1 { size.removeLast() }
      return Int(size).map { $0 * unit }
    }
    return nil
  }

  @Test func sizesAreTheKernelsDescription() {
    for (level, size, low, high) in [(1, CPUCaches.l1d, 16 << 10, 1 << 20), (2, CPUCaches.l2, 256 << 10, 16 << 20),
                                     (3, CPUCaches.l3, CPUCaches.l2, 1 << 30)] {
      // Held to the bounds the blocks assume, as the C side holds them.
      #expect(size >= low && size <= high, "level \(level): \(size)")
      guard let expected = Self.described(level: level) else { continue }
      #expect(size == min(max(expected, low), high), "level \(level): \(size) against \(expected)")
    }
  }
}
