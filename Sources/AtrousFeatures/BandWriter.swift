import AtrousCore
import AtrousIO
import Dispatch
import Synchronization

/// Where the bytes of a band of hypercolumns go in an `.npy` file.
struct BandLayout: Sendable {
  /// The whole output's size: (H, W, C) or (C, H, W) in the file.
  var height: Int, width: Int, channels: Int
  /// float16 (else float32) elements, (H, W, C) (else (C, H, W)) order.
  var f16: Bool, hwc: Bool
  /// Bytes before the first element (the header).
  var base: Int

  var itemSize: Int { f16 ? 2 : 4 }

  /// Bytes a band of `floats` values needs for its converted or reordered
  /// form: none when float32 (H, W, C) is written as it is; (C, H, W)
  /// gathers the float32 values first, then converts them.
  func scratchBytes(floats: Int) -> Int { hwc ? (f16 ? floats * 2 : 0) : floats * (4 + itemSize) }
}

/// Writes bands of hypercolumns into their places in an `.npy` file on a
/// thread of its own, so that converting and writing one band overlaps
/// computing the next.
///
/// Two band buffers take turns: `next()` hands out one that no write still
/// reads (waiting for the write that used it last), `submit` queues its
/// write. A write that fails makes every later `next()` and `finish()`
/// throw its error; queued writes after it do nothing.
final class BandWriter: @unchecked Sendable {
  private let writer: AtomicFileWriter
  private let layout: BandLayout
  private let queue = DispatchQueue(label: "atrous.hypercolumn-writer")
  /// Buffers no write is reading.
  private let idle = DispatchSemaphore(value: 2)
  /// Per buffer: (floats) of (rows, columns, C) and its converted bytes.
  private let bands: [AlignedStorage], scratch: [AlignedStorage]
  private var turn = 0
  /// The first write's error. Read without waiting for the queue, so
  /// that `next()` waits only for its own buffer's write, not for every
  /// queued one.
  private let failure = Mutex<Error?>(nil)
  /// Written only on `queue`; read after `queue.sync`.
  private var busy = Duration.zero
  private var overflowCount = 0

  /// - Parameter floats: the most floats one band holds.
  init(writer: AtomicFileWriter, layout: BandLayout, floats: Int) {
    self.writer = writer
    self.layout = layout
    bands = (0..<2).map { _ in AlignedStorage(byteCount: floats * 4, zeroed: false) }
    scratch = (0..<2).map { _ in AlignedStorage(byteCount: layout.scratchBytes(floats: floats), zeroed: false) }
  }

  /// Milliseconds the writing thread spent converting and writing.
  var milliseconds: Double { queue.sync { busy.milliseconds } }
  /// Finite values written as float16 infinity.
  var overflows: Int { queue.sync { overflowCount } }

  /// The buffer for the next band, (rows, columns, C) float32, once no
  /// write reads it.
  /// - Throws: the error of a write that failed.
  func next() throws -> UnsafeMutablePointer<Float> {
    idle.wait()
    if let error = failure.withLock({ $0 }) {
      idle.signal()
      throw error
    }
    return bands[turn].pointer.assumingMemoryBound(to: Float.self)
  }

  /// Queues the write of the band `next()` gave, holding output rows
  /// `rows` and columns `columns`.
  func submit(rows: Range<Int>, columns: Range<Int>) {
    let index = turn
    turn = 1 - turn
    queue.async { [self] in
      defer { idle.signal() }
      guard failure.withLock({ $0 }) == nil else { return }
      let start = ContinuousClock.now
      do {
        overflowCount += try write(bands[index].pointer.assumingMemoryBound(to: Float.self),
                                   scratch: scratch[index].pointer, rows: rows, columns: columns)
      } catch {
        failure.withLock { $0 = error }
      }
      busy += ContinuousClock.now - start
    }
  }

  /// Waits for every queued write.
  /// - Throws: the error of a write that failed.
  func finish() throws {
    queue.sync {}
    if let error = failure.withLock({ $0 }) { throw error }
  }

  /// Writes one band at its places in the file; returns the values that
  /// overflowed float16.
  private func write(_ band: UnsafePointer<Float>, scratch: UnsafeMutableRawPointer, rows: Range<Int>,
                     columns: Range<Int>) throws -> Int {
    let (height, width, channels, item, base) = (layout.height, layout.width, layout.channels, layout.itemSize, layout.base)
    let w = columns.count, count = rows.count * w * channels
    // The float32 values in the file's order: the band as it is for
    // (H, W, C); for (C, H, W), each channel's rows gathered.
    var values = UnsafePointer(band)
    if !layout.hwc {
      let gathered = scratch.assumingMemoryBound(to: Float.self)  // (C, rows, w)
      for c in 0..<channels {
        for i in 0..<(rows.count * w) { gathered[c * rows.count * w + i] = band[i * channels + c] }
      }
      values = UnsafePointer(gathered)
    }
    var bytes = UnsafeRawPointer(values)
    var overflows = 0
    if layout.f16 {
      let halves = scratch + (layout.hwc ? 0 : count * 4)
      overflows = Float16Bits.convert(UnsafeBufferPointer(start: values, count: count),
                                      into: UnsafeMutableRawBufferPointer(start: halves, count: count * 2))
      bytes = UnsafeRawPointer(halves)
    }
    if layout.hwc {
      // Each row's run of pixels is contiguous in the file.
      let rowBytes = w * channels * item
      if w == width {
        try writer.write(UnsafeRawBufferPointer(start: bytes, count: count * item),
                         at: base + rows.lowerBound * width * channels * item)
      } else {
        for (i, y) in rows.enumerated() {
          try writer.write(UnsafeRawBufferPointer(start: bytes + i * rowBytes, count: rowBytes),
                           at: base + (y * width + columns.lowerBound) * channels * item)
        }
      }
    } else {
      for c in 0..<channels {
        for (i, y) in rows.enumerated() {
          try writer.write(UnsafeRawBufferPointer(start: bytes + ((c * rows.count + i) * w) * item, count: w * item),
                           at: base + ((c * height + y) * width + columns.lowerBound) * item)
        }
      }
    }
    return overflows
  }
}
