import AtrousCore
import Testing

/// `String(printf:)` and `trimmed()`, the formatting the command line uses
/// for numbers and option lists.
@Suite struct StringFormattingTests {
  @Test func printfFollowsCsRules() {
    #expect(String(printf: "%.1f", 3.14159) == "3.1")
    #expect(String(printf: "%.3f", -0.0005) == "-0.001")
    #expect(String(printf: "%.0f ms", 12.5) == "12 ms")  // exactly halfway rounds to even
    #expect(String(printf: "made %ld files in %.1f s", 64, 2.25) == "made 64 files in 2.2 s")
    #expect(String(printf: "%ld", Int.max) == "9223372036854775807")
    #expect(String(printf: "%.2f G", 1.5e9 / 1e9) == "1.50 G")
    #expect(String(printf: "plain") == "plain")
  }

  /// A result longer than the first buffer is formatted again, whole.
  @Test func printfOfLongResults() {
    #expect(String(printf: "%0300.1f|%ld", 2.0, 5) == String(repeating: "0", count: 297) + "2.0|5")
    #expect(String(printf: "%0200ld", 7) == String(repeating: "0", count: 199) + "7")
  }

  @Test func trimmedDropsWhiteSpaceAtEitherEnd() {
    #expect(" conv1_2 ".trimmed() == "conv1_2")
    #expect("\tlayer\n".trimmed() == "layer")
    #expect("a b".trimmed() == "a b")
    #expect("   ".trimmed() == "")
    #expect("".trimmed() == "")
    #expect("x,  y ".split(separator: ",").map { $0.trimmed() } == ["x", "y"])
  }
}
