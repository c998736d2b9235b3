import AtrousCore
import AtrousTestSupport
import Testing
import _CKernels
@testable import AtrousNN

/// The blocked 2-D transpose under NCHW <-> NHWC (`atr_transpose_columns`)
/// against the plain index formula, on every instruction set, with its
/// stores sent past the caches or not: every value in its place, the rest
/// of the output untouched, whatever the shape, column range and the
/// output's alignment (streaming only where the rows allow it).
@Suite struct TransposeKernelTests {
  /// (rows, columns): channel planes into pixels and back, whole 8x8
  /// blocks and ragged edges, rows a multiple of 8 and not.
  static let shapes = [(8, 8), (16, 40), (64, 1000), (24, 37), (3, 100), (13, 29), (100, 16), (1000, 64), (40, 9)]

  @Test(arguments: InstructionSet.available)
  func transposeMatchesTheFormula(isa: InstructionSet) {
    var random = SeededRandom(seed: 5)
    for (rows, columns) in Self.shapes {
      let input = (0..<(rows * columns)).map { _ in Float.random(in: -8...8, using: &random) }  // (rows, columns)
      // Column ranges as threads take them: all, a middle run, a run of one.
      let ranges = [0..<columns, (columns / 3)..<(2 * columns / 3 + 1), (columns - 1)..<columns]
      for range in ranges {
        for offset in [0, 1, 8] {
          for stream: Int32 in [0, 1] {
            let storage = AlignedStorage(byteCount: (rows * columns + offset) * MemoryLayout<Float>.stride, zeroed: true)
            let out = storage.pointer.assumingMemoryBound(to: Float.self) + offset  // (columns, rows)
            let sentinel: Float = -1234.5
            for i in 0..<(rows * columns) { out[i] = sentinel }
            InstructionSet.with(isa) {
              input.withUnsafeBufferPointer {
                atr_transpose_columns(out, $0.baseAddress!, rows, columns, range.lowerBound, range.upperBound, stream)
              }
            }
            var wrong = 0
            for j in 0..<columns {
              for i in 0..<rows {
                let expected = range.contains(j) ? input[i * columns + j] : sentinel
                if out[j * rows + i].bitPattern != expected.bitPattern { wrong += 1 }
              }
            }
            #expect(wrong == 0, "\(isa) \(rows)x\(columns) columns \(range) offset \(offset) stream \(stream): \(wrong) wrong")
          }
        }
      }
    }
  }

  /// NCHW -> NHWC and back through `Permute.apply`, whose stores stream
  /// when the array outgrows the last-level cache: a 64-channel map of
  /// 192x192 pixels (9 MiB each way), two images of 24 channels at 160x160
  /// (each image's output starts where the one before ends), and one with
  /// too few rows to stream, against the permutation by index.
  @Test func largePermutationsMatchTheIndexFormula() {
    for (n, c, h, w) in [(1, 64, 192, 192), (2, 24, 160, 160), (1, 3, 400, 300)] {
      let count = n * c * h * w
      let x = Tensor(shape: [n, c, h, w], values: (0..<count).map { Float($0 % 9973) })
      let nhwc = Permute.apply(x, order: [0, 2, 3, 1])
      let back = Permute.apply(nhwc, order: [0, 3, 1, 2])
      var wrong = 0
      nhwc.withUnsafeBufferPointer { p in
        for b in 0..<n {
          for y in 0..<h {
            for xx in 0..<w {
              for ch in 0..<c where p[((b * h + y) * w + xx) * c + ch] != Float((((b * c + ch) * h + y) * w + xx) % 9973) {
                wrong += 1
              }
            }
          }
        }
      }
      let unmoved = zip(back.scalars, x.scalars).filter { $0.bitPattern != $1.bitPattern }.count
      #expect(wrong == 0 && unmoved == 0, "\(n)x\(c)x\(h)x\(w): \(wrong) wrong, \(unmoved) not back in place")
    }
  }
}
