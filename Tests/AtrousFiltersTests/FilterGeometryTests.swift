import AtrousCore
@testable import AtrousFilters
import AtrousTestSupport
import Testing

@Suite struct FilterGeometryTests {
  static let borders: [BorderMode] = [.constant(0), .constant(5), .replicate, .reflect, .reflect101, .wrap]

  @Test(arguments: borders)
  func borderIndexMatchesPeriodicDefinition(border: BorderMode) {
    for n in [1, 2, 3, 7] {
      // Far positions too, which once took p / n reflections each.
      for p in Array(-20...27) + [-1_000_000_000_007, 999_999_999_989] {
        if n == 1 && border == .wrap { continue }
        #expect(border.index(p, count: n) == NaiveFilter.source(p, count: n, border: border), "p=\(p) n=\(n)")
      }
    }
  }

  @Test func borderExamplesFromOpenCV() {
    // gfedcb|abcdefgh|gfedcba and fedcba|abcdefgh|hgfedcb
    #expect((-3..<0).map { BorderMode.reflect101.index($0, count: 8)! } == [3, 2, 1])
    #expect((-3..<0).map { BorderMode.reflect.index($0, count: 8)! } == [2, 1, 0])
    #expect((8..<11).map { BorderMode.reflect101.index($0, count: 8)! } == [6, 5, 4])
    #expect((8..<11).map { BorderMode.wrap.index($0, count: 8)! } == [0, 1, 2])
  }

  /// floor((n + pb + pe - d(k-1) - 1) / s) + 1, and ceil(n / s) for same.
  @Test func outputSizesFollowTheFormula() throws {
    for n in [1, 5, 8, 31] {
      for k in [1, 2, 3, 5] {
        for s in [1, 2, 3] {
          for d in [1, 2] {
            let extent = d * (k - 1) + 1
            for padding in [Padding.same, .sameLower, .valid, .explicit(top: 1, bottom: 2, left: 0, right: 3)] {
              let g = FilterGeometry(stride: (s, s), dilation: (d, d), padding: padding)
              let (pb, pe) = NaiveFilter.pads(n: n, k: k, s: s, d: d, padding: padding, vertical: true)
              let expected = n + pb + pe >= extent ? (n + pb + pe - extent) / s + 1 : nil
              let plan = try? g.plan(count: n, taps: k, vertical: true)
              #expect(plan?.outputCount == expected, "n=\(n) k=\(k) s=\(s) d=\(d) \(padding)")
              if padding == .same || padding == .sameLower {
                #expect(plan?.outputCount == (n + s - 1) / s)
              }
            }
          }
        }
      }
    }
  }

  @Test func kernelLargerThanPaddedInputIsRefused() {
    let g = FilterGeometry(padding: .valid)
    #expect(throws: FilterError.kernelTooLarge(extent: 5, paddedSize: 4, axis: "height")) {
      try Filter.correlation(Kernel2D(rows: 5, columns: 1, values: [1, 2, 3, 4, 6]), geometry: g).outputSize(height: 4, width: 9)
    }
    let dilated = FilterGeometry(dilation: (3, 3), padding: .valid)
    #expect(throws: FilterError.self) { try Filter.box(width: 3, height: 3, geometry: dilated).outputSize(height: 6, width: 6) }
  }

  /// Sizes past what any machine could run are refused by name, before
  /// anything is computed or allocated: huge sigmas, sizes, strides,
  /// dilations and paddings, and outputs padding would make enormous.
  @Test(arguments: [
    "gaussian:sigma=2147483647", "gaussian:sigma=1e308", "gaussian:ksize=99999999999", "box:size=9223372036854775807",
    "box:width=3,height=1048577", "log:sigma=1e300", "dog:sigma=2,sigma2=1e300", "unsharp:sigma=1e20",
    "box:size=3,padding=9223372036854775807", "box:size=3,stride=9223372036854775807", "sobel:dx,dilation=1048577",
  ])
  func hugeParametersAreRefused(spec: String) {
    #expect(throws: FilterError.self) { _ = try FilterSpec.parse(spec) }
  }

  /// Padding or a kernel that would make the padded input enormous: the
  /// stages' work is proportional to it (box:size=65536 on 32x32 took
  /// minutes).
  @Test func enormousPaddedInputsAreRefused() throws {
    let chain = FilterChain([try FilterSpec.parse("box:size=3,padding=1000000")])
    #expect(throws: FilterError.paddedInputTooLarge(height: 2_000_010, width: 2_000_010)) {
      _ = try chain.outputShape(forInput: [10, 10, 1])
    }
    #expect(throws: FilterError.paddedInputTooLarge(height: 65567, width: 65567)) {
      _ = try FilterChain([try FilterSpec.parse("box:size=65536")]).outputShape(forInput: [32, 32, 3])
    }
    // The largest padding allowed still plans on a small image.
    #expect(try FilterChain([try FilterSpec.parse("box:size=3,padding=10000")]).outputShape(forInput: [10, 10, 1]) == [20008, 20008, 1])
  }
}
