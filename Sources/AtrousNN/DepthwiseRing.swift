import AtrousCore
import _CKernels

/// The input rows one thread's part of the depthwise output rows reads,
/// kept in a ring of as many rows as a window spans (row y in slot
/// y % extent, so the rows of one window never share a slot), each padded
/// with zeros on both sides: every output pixel's taps land inside its
/// row, so the kernel's blocks of pixels cover the edges too, and each row
/// is filled once however many windows read it. One per thread: a part
/// touches only its own, its part of one `WorkerScratch`.
final class DepthwiseRing: @unchecked Sendable {
  let kernel: ConvKernel
  /// The parts' memory, kept alive by the rings cut from it.
  private let scratch: WorkerScratch
  /// (extent, padLeft + W + padRight, C) floats: this ring's part.
  private let memory: UnsafeMutableRawPointer
  /// The input row (flat over images) each slot holds, -1 for none.
  private var held: [Int]
  /// The window over the padded rows: no padding left or right.
  let geometry: atr_conv_geometry

  /// Rings for `kernel`'s input rows, one per part, their padding zeroed.
  static func rings(_ kernel: ConvKernel, parts: Int) -> [DepthwiseRing] {
    let axis = kernel.axes[1]
    let bytes = kernel.axes[0].extent * (axis.input + axis.padBegin + axis.padEnd) * kernel.cin * MemoryLayout<Float>.stride
    let scratch = WorkerScratch(workers: parts, bytes: bytes)
    return (0..<parts).map { DepthwiseRing(kernel, scratch: scratch, part: $0) }
  }

  /// A ring for `kernel`'s input rows in part `part` of `scratch` (of
  /// `rings`' size), its padding zeroed.
  private init(_ kernel: ConvKernel, scratch: WorkerScratch, part: Int) {
    self.kernel = kernel
    let axis = kernel.axes[1]
    held = [Int](repeating: -1, count: kernel.axes[0].extent)
    var geometry = kernel.geometry
    geometry.input_w = axis.input + axis.padBegin + axis.padEnd
    geometry.pad_left = 0
    self.geometry = geometry
    let c = kernel.cin, rowFloats = geometry.input_w * c
    self.scratch = scratch
    memory = scratch[part].pointer
    let base = memory.assumingMemoryBound(to: Float.self)
    for slot in held.indices {
      (base + slot * rowFloats).initialize(repeating: 0, count: axis.padBegin * c)
      (base + slot * rowFloats + (axis.padBegin + axis.input) * c).initialize(repeating: 0, count: axis.padEnd * c)
    }
  }

  /// Points `rows` at the rows output row `row` (flat over images) reads,
  /// nil in the padding above and below, first calling `fill(y, dst)` for
  /// each row y not held yet: it writes the (W, C) input row y at dst.
  func rows(for row: Int, into rows: inout [UnsafePointer<Float>?], fill: (Int, UnsafeMutablePointer<Float>) -> Void) {
    let base = memory.assumingMemoryBound(to: Float.self)
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
