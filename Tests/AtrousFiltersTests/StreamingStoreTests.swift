import AtrousCore
@testable import AtrousFilters
import AtrousTestSupport
import Testing
import _CKernels

/// Stores that skip the cache (a large output's last stage) give the same
/// values as ordinary ones, in the kernels at every alignment and length
/// and through whole chains, on every instruction set.
@Suite struct StreamingStoreTests {
  /// Offsets of `out` from a 64-byte boundary, in floats, and lengths
  /// around the 16-float vectors (and none).
  static let offsets = [0, 1, 5, 15]
  static let counts = [0, 1, 15, 16, 17, 63, 64, 100, 259]

  @Test(arguments: InstructionSet.available)
  func sobelMagnitudeStreamsTheSameValues(isa: InstructionSet) {
    var random = SeededRandom(seed: 11)
    for step in [1, 3] {
      for count in Self.counts {
        // Three rows padded by `step` on both sides.
        let rows = (0..<3).map { _ in (0..<(count + 2 * step)).map { _ in Float.random(in: -4...4, using: &random) } }
        let expected = (0..<count).map { j -> Float in
          func v(_ r: Int, _ dx: Int) -> Double { Double(rows[r][j + step + dx * step]) }
          let gx = (v(0, 1) - v(0, -1)) + 2 * (v(1, 1) - v(1, -1)) + (v(2, 1) - v(2, -1))
          let gy = (v(2, -1) + 2 * v(2, 0) + v(2, 1)) - (v(0, -1) + 2 * v(0, 0) + v(0, 1))
          return Float((gx * gx + gy * gy).squareRoot())
        }
        for offset in Self.offsets {
          let results = [0, 1].map { stream in
            InstructionSet.with(isa) {
              aligned(count + offset) { out in
                rows[0].withUnsafeBufferPointer { a in
                  rows[1].withUnsafeBufferPointer { r in
                    rows[2].withUnsafeBufferPointer { b in
                      atr_sobel3_magnitude(out + offset, a.baseAddress! + step, r.baseAddress! + step,
                                           b.baseAddress! + step, count, step, Int32(stream))
                    }
                  }
                }
              }.dropFirst(offset)
            }
          }
          #expect(results[1].map(\.bitPattern) == results[0].map(\.bitPattern), "\(isa) step \(step) count \(count) offset \(offset)")
          let worst = zip(results[0], expected).map { abs($0 - $1) / (abs($1) + 1) }.max() ?? 0
          #expect(worst < 1e-6, "\(isa) step \(step) count \(count) offset \(offset): \(worst)")
        }
      }
    }
  }

  @Test(arguments: InstructionSet.available)
  func columnFilterStreamsTheSameValues(isa: InstructionSet) {
    var random = SeededRandom(seed: 12)
    let taps: [Float] = [0.1, 0.2, 0.4, 0.2, 0.1]
    let outputs = 3
    for count in Self.counts {
      let rows = (0..<(outputs + taps.count - 1)).map { _ in (0..<count).map { _ in Float.random(in: -4...4, using: &random) } }
      let expected = (0..<outputs).map { r in
        (0..<count).map { j in Float((0..<taps.count).reduce(0.0) { $0 + Double(taps[$1]) * Double(rows[r + $1][j]) }) }
      }
      for offset in Self.offsets {
        let results = [0, 1].map { stream in
          InstructionSet.with(isa) {
            // Output rows one after another, each `count + offset` floats:
            // with an offset, only some rows start on a boundary.
            aligned(outputs * (count + offset)) { out in
              let pointers: [UnsafeMutablePointer<Float>?] = (0..<outputs).map { out + $0 * (count + offset) }
              // (rows, count): one buffer, so its row pointers stay valid.
              let flat = rows.flatMap { $0 }
              flat.withUnsafeBufferPointer { f in
                let inputs: [UnsafePointer<Float>?] = (0..<rows.count).map { r in f.baseAddress.map { $0 + r * count } }
                pointers.withUnsafeBufferPointer { o in
                  inputs.withUnsafeBufferPointer { i in
                    atr_filter_columns_rows(o.baseAddress, Int32(outputs), i.baseAddress, taps, Int32(taps.count),
                                            count, ATR_TAPS_SYMMETRIC, Int32(stream))
                  }
                }
              }
            }
          }
        }
        #expect(results[1].map(\.bitPattern) == results[0].map(\.bitPattern), "\(isa) count \(count) offset \(offset)")
        for r in 0..<outputs {
          let got = results[0][(r * (count + offset))..<(r * (count + offset) + count)]
          let worst = zip(got, expected[r]).map { abs($0 - $1) }.max() ?? 0
          #expect(worst < 1e-5, "\(isa) count \(count) row \(r): \(worst)")
        }
      }
    }
  }

  /// Whole chains whose last stage streams, one and two threads, widths
  /// whose rows start on a 64-byte boundary and widths whose rows do not.
  @Test(arguments: InstructionSet.available)
  func streamingChainsEqualCachedOnes(isa: InstructionSet) throws {
    let chains = [
      FilterChain([try .gaussian(sigma: 2)]),
      FilterChain([try .gradient(.sobel)]),
      FilterChain([try .gaussian(sigma: 1), try .gradient(.sobel, geometry: FilterGeometry(border: .replicate))]),
    ]
    for chain in chains {
      for (height, width, channels) in [(37, 64, 1), (20, 53, 3), (9, 2, 1)] {
        let input = testTensor(height: height, width: width, channels: channels)
        for threads in [1, 2] {
          let run = { (streams: Bool) in
            try FilterChain.$forcedStreaming.withValue(streams) {
              try InstructionSet.with(isa) { try chain.apply(to: input, threads: threads) }
            }
          }
          #expect(try run(true) == run(false), "\(isa) \(height)x\(width)x\(channels), \(threads) threads")
        }
      }
    }
  }

  /// Runs `body` on `count` floats (NaN-filled, so an output left unwritten
  /// shows) starting on a 64-byte boundary, and returns them.
  private func aligned(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
    let storage = AlignedStorage(byteCount: max(count, 1) * MemoryLayout<Float>.stride, zeroed: false)
    let p = storage.pointer.assumingMemoryBound(to: Float.self)
    p.update(repeating: .nan, count: count)
    body(p)
    return Array(UnsafeBufferPointer(start: p, count: count))
  }
}
