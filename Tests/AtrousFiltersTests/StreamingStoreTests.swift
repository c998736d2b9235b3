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

  /// The Sobel kernel on 1 to 6 output rows at once (a group of 4 and
  /// rows one at a time), streaming or not, with a prefetch or without:
  /// each output row equals the plain formula, and has the same bits
  /// whatever the call around it.
  @Test(arguments: InstructionSet.available)
  func sobelMagnitudeStreamsTheSameValues(isa: InstructionSet) {
    var random = SeededRandom(seed: 11)
    for step in [1, 3] {
      for count in Self.counts {
        // Eight rows padded by `step` on both sides.
        let rows = (0..<8).map { _ in (0..<(count + 2 * step)).map { _ in Float.random(in: -4...4, using: &random) } }
        let expected = (0..<6).map { r in
          (0..<count).map { j -> Float in
            func v(_ dy: Int, _ dx: Int) -> Double { Double(rows[r + dy][j + step + dx * step]) }
            let gx = (v(0, 1) - v(0, -1)) + 2 * (v(1, 1) - v(1, -1)) + (v(2, 1) - v(2, -1))
            let gy = (v(2, -1) + 2 * v(2, 0) + v(2, 1)) - (v(0, -1) + 2 * v(0, 0) + v(0, 1))
            return Float((gx * gx + gy * gy).squareRoot())
          }
        }
        let flat = rows.flatMap { $0 }
        // Output rows `first..<first + outputs`, one call, each `count + offset` floats.
        func run(first: Int, outputs: Int, offset: Int, stream: Int) -> [[Float]] {
          let length = count + offset
          let all = InstructionSet.with(isa) {
            aligned(outputs * length) { out in
              flat.withUnsafeBufferPointer { f in
                let inputs: [UnsafePointer<Float>?] = (0..<(outputs + 2)).map { f.baseAddress! + (first + $0) * (count + 2 * step) + step }
                let pointers: [UnsafeMutablePointer<Float>?] = (0..<outputs).map { out + $0 * length + offset }
                // The streaming run also prefetches rows: neither may change a value.
                atr_sobel3_magnitude(pointers, Int32(outputs), inputs, count, step, stream == 1 ? f.baseAddress : nil,
                                     Int32(stream == 1 ? 2 : 0), Int32(stream))
              }
            }
          }
          return (0..<outputs).map { Array(all[($0 * length + offset)..<($0 * length + length)]) }
        }
        for offset in Self.offsets {
          let alone = (0..<6).map { run(first: $0, outputs: 1, offset: offset, stream: 0)[0] }
          for outputs in [1, 4, 6] {
            for stream in [0, 1] {
              let results = run(first: 0, outputs: outputs, offset: offset, stream: stream)
              for r in 0..<outputs {
                let label = "\(isa) step \(step) count \(count) offset \(offset) rows \(outputs) stream \(stream) row \(r)"
                #expect(results[r].map(\.bitPattern) == alone[r].map(\.bitPattern), "\(label)")
                let worst = zip(results[r], expected[r]).map { abs($0 - $1) / (abs($1) + 1) }.max() ?? 0
                #expect(worst < 1e-6, "\(label): \(worst)")
              }
            }
          }
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
                                            count, Int32(stream))
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
