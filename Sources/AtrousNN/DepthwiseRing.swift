import AtrousCore
import _CKernels

/// The input rows one thread's part of the depthwise output rows reads,
/// kept in a ring of as many rows as a window spans (row y in slot
/// y % extent, so the rows of one window never share a slot), each padded
/// with zeros on both sides: every output pixel's taps land inside its
/// row, so the kernel's blocks of pixels cover the edges too, and each row
/// is filled once however many windows read it. One per thread: a part
/// touches only its own, its part of one `WorkerScratch`, and zeroes its
/// padding there, on its own thread, as it first uses it.
final class DepthwiseRing: @unchecked Sendable {
  let kernel: ConvKernel
  /// The parts' memory, kept alive by the rings cut from it.
  private let scratch: WorkerScratch
  /// (extent, padLeft + W + padRight, C) floats: this ring's part.
  private let memory: UnsafeMutableRawPointer
  /// The input row (flat over images) each slot holds, -1 for none.
  private var held: [Int]
  /// The channels whose padding is zeroed, none at first.
  private var zeroed: Range<Int> = 0..<0
  /// The window over the padded rows: no padding left or right.
  let geometry: atr_conv_geometry

  /// Rings for `kernel`'s input rows, one per part.
  static func rings(_ kernel: ConvKernel, parts: Int) -> [DepthwiseRing] {
    let axis = kernel.axes[1]
    let bytes = kernel.axes[0].extent * (axis.input + axis.padBegin + axis.padEnd) * kernel.cin * MemoryLayout<Float>.stride
    let scratch = WorkerScratch(workers: parts, bytes: bytes)
    return (0..<parts).map { DepthwiseRing(kernel, scratch: scratch, part: $0) }
  }

  /// A ring for `kernel`'s input rows in part `part` of `scratch` (of
  /// `rings`' size).
  private init(_ kernel: ConvKernel, scratch: WorkerScratch, part: Int) {
    self.kernel = kernel
    held = [Int](repeating: -1, count: kernel.axes[0].extent)
    var geometry = kernel.geometry
    geometry.input_w = kernel.axes[1].input + kernel.axes[1].padBegin + kernel.axes[1].padEnd
    geometry.pad_left = 0
    self.geometry = geometry
    self.scratch = scratch
    memory = scratch[part].pointer
  }

  /// Zeroes the padding pixels' `channels` in every slot.
  private func zeroPadding(_ channels: Range<Int>) {
    let axis = kernel.axes[1], c = kernel.cin
    let base = memory.assumingMemoryBound(to: Float.self), rowFloats = geometry.input_w * c
    for slot in held.indices {
      for x in 0..<geometry.input_w where x < axis.padBegin || x >= axis.padBegin + axis.input {
        (base + slot * rowFloats + x * c + channels.lowerBound).initialize(repeating: 0, count: channels.count)
      }
    }
  }

  /// Points `rows` at the rows output row `row` (flat over images) reads,
  /// nil in the padding above and below, first calling `fill(y, dst)` for
  /// each row y not held yet: it writes the (W, C) input row y at dst, at
  /// least its `channels` (all by default), the only ones the rows then
  /// hold. A ring serves one range of channels.
  func rows(for row: Int, channels: Range<Int>? = nil, into rows: inout [UnsafePointer<Float>?],
            fill: (Int, UnsafeMutablePointer<Float>) -> Void) {
    let channels = channels ?? 0..<kernel.cin
    if zeroed != channels {
      precondition(zeroed.isEmpty, "a ring serves one range of channels")
      zeroPadding(channels)
      zeroed = channels
    }
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
