import AtrousCore
import Testing

/// Bilinear resizing against the blend written out in double precision,
/// on every instruction set: channel counts below, at and past one vector
/// (the kernel's vector body and its last few elements), enlarging and
/// shrinking, keeping a size, both alignments, one and two threads.
@Suite struct BilinearResizeTests {
  /// A map resized to its own size comes back as it was, bit for bit, an
  /// infinite value too: every tap weighs its first neighbour alone, and
  /// a weight of 0 does not blend in (infinity times 0 would be NaN).
  @Test(arguments: InstructionSet.available)
  func ownSizeReturnsTheMap(isa: InstructionSet) {
    var values = (0..<(5 * 6 * 20)).map { Float($0 % 17) - 8.5 }
    values[37] = .infinity
    values[20 * 6 + 3] = -.infinity
    let input = Tensor(shape: [5, 6, 20], values: values)
    for alignment in [BilinearResize.Alignment.halfPixel, .alignCorners] {
      let got = InstructionSet.with(isa) { BilinearResize.resize(input, height: 5, width: 6, alignment: alignment, threads: 2) }
      #expect(zip(got.scalars, values).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(isa) \(alignment)")
    }
  }

  @Test(arguments: InstructionSet.available)
  func resizeMatchesTheBlendInDouble(isa: InstructionSet) {
    var random = SeededRandom(seed: 5)
    // The last two keep one size or both: taps of weight 0, rows read
    // where they are and pixels copied.
    for (inH, inW, c, h, w) in [(5, 7, 1, 11, 13), (9, 6, 3, 4, 17), (4, 4, 16, 9, 3), (6, 5, 21, 6, 12), (1, 3, 2, 3, 1),
                                (7, 4, 19, 7, 10), (6, 9, 37, 6, 9)] {
      let values = (0..<(inH * inW * c)).map { _ in Float.random(in: -3...3, using: &random) }
      let input = Tensor(shape: [inH, inW, c], values: values)
      for alignment in [BilinearResize.Alignment.halfPixel, .alignCorners] {
        let rows = BilinearResize.taps(input: inH, output: h, alignment: alignment)
        let columns = BilinearResize.taps(input: inW, output: w, alignment: alignment)
        var expected = [Float](repeating: 0, count: h * w * c)
        for y in 0..<h {
          for x in 0..<w {
            for k in 0..<c {
              func v(_ r: Int, _ s: Int) -> Double { Double(values[(r * inW + s) * c + k]) }
              let (t, u) = (rows[y], columns[x])
              func row(_ s: Int) -> Double { v(t.low, s) + (v(t.high, s) - v(t.low, s)) * Double(t.weight) }
              expected[(y * w + x) * c + k] = Float(row(u.low) + (row(u.high) - row(u.low)) * Double(u.weight))
            }
          }
        }
        for threads in [1, 2] {
          let got = InstructionSet.with(isa) {
            BilinearResize.resize(input, height: h, width: w, alignment: alignment, threads: threads)
          }
          #expect(got.shape == [h, w, c])
          let worst = zip(got.scalars, expected).map { abs($0 - $1) }.max() ?? 0
          #expect(worst < 2e-6, "\(isa) \(inH)x\(inW)x\(c) -> \(h)x\(w) \(alignment) \(threads) threads: \(worst)")
        }
      }
    }
  }
}
