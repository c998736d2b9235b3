import AtrousCore
import _CKernels

/// The input rows one thread's band of depthwise output rows reads, kept in
/// a ring of as many rows as a window spans (row y in slot y % extent, so
/// the rows of one window never share a slot), each padded with zeros on
/// both sides: every output pixel's taps land inside its row, so the
/// kernel's blocks of pixels cover the edges too, and each row is filled
/// once however many windows read it.
struct DepthwiseRing {
  let kernel: ConvKernel
  /// (extent, padLeft + W + padRight, C) floats.
  let base: UnsafeMutablePointer<Float>
  /// The input row (flat over images) each slot holds, -1 for none.
  private var held: [Int]
  /// The window over the padded rows: no padding left or right.
  var geometry: atr_conv_geometry

  /// Floats of scratch a ring for `kernel` takes.
  static func floats(_ kernel: ConvKernel) -> Int {
    kernel.axes[0].extent * (kernel.axes[1].input + kernel.axes[1].padBegin + kernel.axes[1].padEnd) * kernel.cin
  }

  /// A ring in `floats(kernel)` floats at `base`, its padding zeroed.
  init(_ kernel: ConvKernel, at base: UnsafeMutablePointer<Float>) {
    self.kernel = kernel
    self.base = base
    let axis = kernel.axes[1]
    held = [Int](repeating: -1, count: kernel.axes[0].extent)
    geometry = kernel.geometry
    geometry.input_w = axis.input + axis.padBegin + axis.padEnd
    geometry.pad_left = 0
    let c = kernel.cin, rowFloats = geometry.input_w * c
    for slot in held.indices {
      (base + slot * rowFloats).initialize(repeating: 0, count: axis.padBegin * c)
      (base + slot * rowFloats + (axis.padBegin + axis.input) * c).initialize(repeating: 0, count: axis.padEnd * c)
    }
  }

  /// One ring per part of a `Parallel.bands` loop, each at the start of
  /// that part's scratch block, which it keeps alive.
  final class PerPart: @unchecked Sendable {
    /// Part p's ring at `rings[p]`; each part touches only its own.
    let rings: UnsafeMutablePointer<DepthwiseRing>
    let count: Int
    private let scratch: [AlignedStorage]

    init(_ parts: Int, _ kernel: ConvKernel, _ scratch: [AlignedStorage]) {
      count = parts
      self.scratch = scratch
      rings = UnsafeMutablePointer<DepthwiseRing>.allocate(capacity: max(1, parts))
      for part in 0..<parts {
        (rings + part).initialize(to: DepthwiseRing(kernel, at: scratch[part].pointer.assumingMemoryBound(to: Float.self)))
      }
    }

    deinit {
      rings.deinitialize(count: count)
      rings.deallocate()
    }
  }

  /// Points `rows` at the rows output row `row` (flat over images) reads,
  /// nil in the padding above and below, first calling `fill(y, dst)` for
  /// each row y not held yet: it writes the (W, C) input row y at dst.
  mutating func rows(for row: Int, into rows: inout [UnsafePointer<Float>?],
                     fill: (Int, UnsafeMutablePointer<Float>) -> Void) {
    let rowFloats = geometry.input_w * kernel.cin
    for ky in rows.indices {
      guard let y = kernel.inputRow(row, ky: ky) else { rows[ky] = nil; continue }
      let slot = y % held.count
      let start = base + slot * rowFloats
      if held[slot] != y {
        fill(y, start + kernel.axes[1].padBegin * kernel.cin)
        held[slot] = y
      }
      rows[ky] = UnsafePointer(start)
    }
  }
}
