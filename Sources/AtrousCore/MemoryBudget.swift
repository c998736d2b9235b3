import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The most memory one buffer sized from outside may take: decoded images,
/// arrays read from `.npy` files, values a model computes, filter outputs,
/// traced model inputs. Each stage multiplies the sizes it was given with
/// overflow checks and compares the bytes with `current` before it
/// allocates, so a header of a few bytes cannot make the process ask for
/// more memory than it may use.
///
/// The default is three quarters of what the process may use: the cgroup
/// memory limit it runs in (v2 `memory.max`, v1 `memory.limit_in_bytes`)
/// where there is one, else the machine's physical memory. Commands set
/// another with `--max-memory`.
public struct MemoryBudget: Sendable, Equatable, CustomStringConvertible {
  /// Bytes one buffer may take.
  public var bytes: Int
  /// Where the figure came from, for messages ("--max-memory", "3/4 of the
  /// cgroup limit of 8 GiB").
  public var source: String

  public init(bytes: Int, source: String) {
    self.bytes = bytes
    self.source = source
  }

  /// Whether `count` items of `itemSize` bytes fit (false when the product
  /// overflows).
  public func allows(_ count: Int, of itemSize: Int = 1) -> Bool {
    guard count >= 0, itemSize >= 0 else { return false }
    let (total, overflow) = count.multipliedReportingOverflow(by: itemSize)
    return !overflow && total <= bytes
  }

  /// "the memory budget of 6 GiB (3/4 of physical memory, 8 GiB; --max-memory sets another)".
  public var description: String { "the memory budget of \(Self.format(bytes)) (\(source))" }

  // MARK: - The budget in force

  private static let installed = Mutex<MemoryBudget?>(nil)

  /// The budget every stage checks: the one `install` set, else `detected`.
  public static var current: MemoryBudget {
    installed.withLock { $0 } ?? detected
  }

  /// Throws `refusal(bytes, budget)` when `count` items of `itemSize`
  /// bytes do not fit `current`: the one check every stage makes before it
  /// allocates, each with an error of its own.
  public static func check(_ count: Int, of itemSize: Int = 1,
                           else refusal: (_ bytes: Int, _ budget: MemoryBudget) -> any Error) throws {
    let budget = current
    guard !budget.allows(count, of: itemSize) else { return }
    throw refusal(count.multipliedReportingOverflow(by: itemSize).partialValue, budget)
  }

  /// Whether a budget was installed (`--max-memory`), rather than detected.
  public static var isInstalled: Bool { installed.withLock { $0 != nil } }

  /// Makes `budget` the one every stage checks from now on.
  public static func install(_ budget: MemoryBudget) {
    installed.withLock { $0 = budget }
  }

  /// Three quarters of the cgroup limit, or of physical memory.
  public static let detected: MemoryBudget = {
    let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) &* Int(sysconf(Int32(_SC_PAGESIZE)))
    let readText = { (path: String) -> String? in
      guard let file = fopen(path, "r") else { return nil }
      defer { fclose(file) }
      var buffer = [CChar](repeating: 0, count: 64)
      guard fgets(&buffer, 64, file) != nil else { return nil }
      return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    let limit = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"].lazy
      .compactMap { readText($0).flatMap(cgroupLimit) }.first
    return budget(cgroupLimit: limit, physical: physical)
  }()

  /// The default budget for a cgroup limit (nil: none) and physical memory.
  public static func budget(cgroupLimit: Int?, physical: Int) -> MemoryBudget {
    if let limit = cgroupLimit, limit < physical {
      return MemoryBudget(bytes: limit / 4 * 3, source: "3/4 of the cgroup memory limit of \(format(limit)); --max-memory sets another")
    }
    return MemoryBudget(bytes: physical / 4 * 3, source: "3/4 of physical memory, \(format(physical)); --max-memory sets another")
  }

  /// A cgroup memory limit file's value: nil for "max" (v2) or a value
  /// near Int.max (v1's way of saying none).
  public static func cgroupLimit(_ text: String) -> Int? {
    guard let value = Int(text.filter { !$0.isWhitespace }), value > 0, value < 1 << 60 else { return nil }
    return value
  }

  // MARK: - Sizes as people write them

  /// A size as `--max-memory` takes it: bytes, or a number with K, M, G or
  /// T (powers of 1024, an optional trailing B or iB), e.g. `512M`, `1.5G`.
  public static func parse(_ text: String) -> Int? {
    var digits = Substring(text.uppercased())
    for suffix in ["IB", "B"] where digits.hasSuffix(suffix) { digits = digits.dropLast(suffix.count); break }
    var scale = 1.0
    if let last = digits.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][String(last)] {
      scale = pow(1024, Double(power))
      digits = digits.dropLast()
    }
    guard let number = Double(digits), number.isFinite, number > 0, number * scale < 0x1p62 else { return nil }
    return Int(number * scale)
  }

  /// Bytes in the largest unit that keeps a number of at least 1: "1.5 GiB".
  public static func format(_ bytes: Int) -> String {
    var value = Double(bytes), unit = 0
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    while value >= 1024 && unit < units.count - 1 {
      value /= 1024
      unit += 1
    }
    if unit == 0 { return "\(bytes) bytes" }
    let rounded = (value * 10).rounded() / 10
    return (rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)) + " " + units[unit]
  }
}
