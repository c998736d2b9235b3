import _CKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The instruction sets the vectorized kernels are built for. The process
/// uses the widest the CPU has, or fewer when the environment variable
/// `ATROUS_ISA` caps it (`avx512`, `avx2` or `baseline`), so every path can
/// be run and measured on one machine.
public enum InstructionSet: Int, CaseIterable, Sendable, Comparable, CustomStringConvertible {
  case baseline = 0
  case avx2 = 1
  case avx512 = 2

  /// The widest this CPU has.
  public static var supported: InstructionSet { InstructionSet(atr_isa_supported()) }

  /// What the process uses: `supported`, capped by `ATROUS_ISA`.
  public static var process: InstructionSet { InstructionSet(atr_isa_process()) }

  /// What kernels called on this thread use.
  public static var current: InstructionSet { InstructionSet(atr_isa_current()) }

  /// Every instruction set this CPU can run, narrowest first.
  public static var available: [InstructionSet] { allCases.filter { $0 <= supported } }

  /// The reason `ATROUS_ISA` is not usable, or nil when it is unset or
  /// names an instruction set (one the CPU lacks is capped to what it has).
  public static var environmentProblem: String? {
    guard atr_isa_requested() == -2, let value = getenv("ATROUS_ISA") else { return nil }
    let names = allCases.map(\.description).joined(separator: ", ")
    return "ATROUS_ISA: '\(String(cString: value))' is not one of \(names)"
  }

  /// `body` with this thread's kernels, and those of the parallel loops it
  /// starts, on `isa` (capped by what the CPU has); the thread's earlier
  /// choice is restored after.
  public static func with<T>(_ isa: InstructionSet, _ body: () throws -> T) rethrows -> T {
    let before = atr_isa_set_thread(Int32(isa.rawValue))
    defer { atr_isa_set_thread(before) }
    return try body()
  }

  public var description: String { String(cString: atr_isa_name(atr_isa(rawValue: UInt32(rawValue)))) }

  public static func < (a: InstructionSet, b: InstructionSet) -> Bool { a.rawValue < b.rawValue }

  init(_ isa: atr_isa) { self = InstructionSet(rawValue: Int(isa.rawValue)) ?? .baseline }
}
