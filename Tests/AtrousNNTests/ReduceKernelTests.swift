import AtrousCore
import Testing
import _CKernels

/// The reductions of a contiguous run (`atr_reduce_extreme`,
/// `atr_reduce_sum`) against plain loops, on every instruction set: every
/// length from 0 to 160 (the lanes' body, its rest, and none), longer runs,
/// NaNs and infinities at every place a lane can hold them; and a global
/// pool's sums and maxima over channels-last pixels (`atr_pixels_into`)
/// for every mix of the runs of 32, 16 and 8 channels and single ones.
@Suite struct ReduceKernelTests {
  static let lengths = Array(0...160) + [1000, 4099]

  /// Values in [-100, 100) from a seed.
  static func values(_ count: Int, seed: Int) -> [Float] {
    var state = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Float(Int(state >> 40) % 20000 - 10000) / 100
    }
  }

  @Test(arguments: InstructionSet.available)
  func extremesMatchAScan(isa: InstructionSet) {
    InstructionSet.with(isa) {
      for count in Self.lengths {
        // Clean, then a NaN or an infinity at each of a few places.
        let clean = Self.values(count, seed: count)
        var cases = [clean]
        for position in Set([0, count / 2, count - 1, 33, 35]) where position >= 0 && position < count {
          for special in [Float.nan, .infinity, -.infinity] {
            var x = clean
            x[position] = special
            cases.append(x)
          }
        }
        for x in cases {
          for largest in [true, false] {
            let expected: Float = x.contains { $0.isNaN } ? .nan
              : (largest ? x.max() : x.min()) ?? (largest ? -.infinity : .infinity)
            let got = atr_reduce_extreme(x, x.count, largest ? 1 : 0)
            #expect(got.bitPattern == expected.bitPattern || (got.isNaN && expected.isNaN),
                    "\(isa) \(largest ? "max" : "min") of \(count): \(got), not \(expected)")
          }
        }
      }
    }
  }

  /// Sums in double, within a few double roundings of the terms' magnitude.
  @Test(arguments: InstructionSet.available)
  func sumsMatchALoop(isa: InstructionSet) {
    InstructionSet.with(isa) {
      for count in Self.lengths {
        let x = Self.values(count, seed: 7 * count + 1)
        for (square, absolute) in [(false, false), (true, false), (false, true)] {
          let terms = x.map { v -> Double in let d = Double(v); return square ? d * d : absolute ? abs(d) : d }
          let expected = terms.reduce(0, +), magnitude = terms.reduce(0) { $0 + abs($1) }
          let got = atr_reduce_sum(x, x.count, square ? 1 : 0, absolute ? 1 : 0)
          #expect(abs(got - expected) <= magnitude * 1e-14, "\(isa) sum of \(count) (square \(square), abs \(absolute)): \(got), not \(expected)")
        }
      }
    }
  }

  /// One row more of a reduction across rows, on every instruction set:
  /// the larger or smaller per element with NaN from either side, and the
  /// sums in double, against plain loops.
  @Test(arguments: InstructionSet.available)
  func rowsFoldIntoTheirAccumulators(isa: InstructionSet) {
    InstructionSet.with(isa) {
      for count in Self.lengths {
        var row = Self.values(count, seed: count + 3), start = Self.values(count, seed: count + 5)
        if count > 2 {
          row[count / 2] = .nan
          start[count - 1] = .nan
          row[0] = .infinity
        }
        for largest in [true, false] {
          var acc = start
          atr_reduce_extreme_into(&acc, row, count, largest ? 1 : 0)
          let expected = zip(start, row).map { a, v -> Float in
            a.isNaN || v.isNaN ? .nan : largest ? Swift.max(a, v) : Swift.min(a, v)
          }
          #expect(zip(acc, expected).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "\(isa) \(largest ? "max" : "min") into, \(count)")
        }
        let finite = Self.values(count, seed: count + 9)
        for (square, absolute) in [(false, false), (true, false), (false, true)] {
          var sums = start.map { Double($0.isNaN ? 0 : $0) }
          let expected = zip(sums, finite).map { s, v -> Double in
            let d = Double(v)
            return s + (square ? d * d : absolute ? abs(d) : d)
          }
          atr_reduce_sum_into(&sums, finite, count, square ? 1 : 0, absolute ? 1 : 0)
          #expect(sums == expected, "\(isa) sum into (square \(square), abs \(absolute)), \(count)")
        }
      }
    }
  }

  /// Sums in the pixels' order, so equal to the bit; maxima as
  /// `atr_max_into` takes them (a NaN or infinity in the pixels at a few
  /// places, one NaN already in the result).
  @Test(arguments: InstructionSet.available)
  func pixelRunsMatchAPerPixelLoop(isa: InstructionSet) {
    InstructionSet.with(isa) {
      for channels in Array(1...41) + [48, 56, 63, 64, 72, 100] {
        for pixels in [0, 1, 3, 49] {
          var x = Self.values(pixels * channels, seed: channels * 31 + pixels)  // (pixels, channels)
          for at in [0, pixels * channels / 2, pixels * channels - 1] where at >= 0 && at < x.count {
            x[at] = at % 2 == 0 ? .nan : .infinity
          }
          for largest in [false, true] {
            var start = Self.values(channels, seed: channels)
            if largest { start[channels / 2] = .nan }
            var expected = start
            for p in 0..<pixels {
              for c in 0..<channels {
                let v = x[p * channels + c]
                expected[c] = largest ? (v > expected[c] ? v : expected[c]) : expected[c] + v
              }
            }
            var got = start
            atr_pixels_into(&got, x, pixels, channels, largest ? 1 : 0)
            let same = zip(got, expected).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
            #expect(same, "\(isa) \(largest ? "max" : "sum") of \(pixels) pixels of \(channels) channels")
          }
        }
      }
    }
  }
}
