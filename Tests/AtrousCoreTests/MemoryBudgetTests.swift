import AtrousCore
import Testing

@Suite struct MemoryBudgetTests {
  @Test func sizesAsPeopleWriteThem() {
    #expect(MemoryBudget.parse("1000") == 1000)
    #expect(MemoryBudget.parse("512M") == 512 << 20)
    #expect(MemoryBudget.parse("1.5G") == 3 << 29)
    #expect(MemoryBudget.parse("8GiB") == 8 << 30)
    #expect(MemoryBudget.parse("2kb") == 2048)
    for bad in ["", "abc", "0", "-1G", "G", "1e30", "nan", "12Q"] { #expect(MemoryBudget.parse(bad) == nil, "\(bad)") }
    #expect(MemoryBudget.format(512) == "512 bytes")
    #expect(MemoryBudget.format(3 << 29) == "1.5 GiB")
    #expect(MemoryBudget.format(1 << 20) == "1 MiB")
  }

  /// cgroup v2 writes "max" for no limit, v1 a number near Int.max.
  @Test func cgroupLimits() {
    #expect(MemoryBudget.cgroupLimit("max\n") == nil)
    #expect(MemoryBudget.cgroupLimit("9223372036854771712\n") == nil)
    #expect(MemoryBudget.cgroupLimit("8589934592\n") == 8 << 30)
    let limited = MemoryBudget.budget(cgroupLimit: 8 << 30, physical: 24 << 30)
    #expect(limited.bytes == 6 << 30 && limited.source.hasPrefix("3/4 of the cgroup memory limit of 8 GiB"))
    let unlimited = MemoryBudget.budget(cgroupLimit: nil, physical: 24 << 30)
    #expect(unlimited.bytes == 18 << 30 && unlimited.source.hasPrefix("3/4 of physical memory, 24 GiB"))
    // A limit above physical memory does not raise the budget.
    #expect(MemoryBudget.budget(cgroupLimit: 64 << 30, physical: 24 << 30) == unlimited)
  }

  @Test func allowsChecksOverflow() {
    let budget = MemoryBudget(bytes: 1 << 20, source: "test")
    #expect(budget.allows(1 << 18, of: 4))
    #expect(!budget.allows(1 << 18 + 1, of: 4))
    #expect(!budget.allows(Int.max, of: 4))
    #expect(!budget.allows(-1))
  }
}
