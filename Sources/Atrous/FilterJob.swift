import AtrousCore
import AtrousFilters
import AtrousIO

/// One input filtered into one file (.npy, PNG or JPEG): what `atrous
/// filter` does per input.
///
/// PNG and JPEG inputs are decoded a band of rows at a time into the
/// streaming chain (`FilterChain.stream`), and the output is encoded as its
/// rows come out, so the memory held depends on the width, the kernels and
/// the threads, not on the height. A border that wraps reads the bottom
/// rows first and so holds the whole image, as do .npy inputs and JPEGs
/// that their EXIF orientation turns; the memory budget refuses what does
/// not fit before anything is decoded. `normalize` needs the range of the
/// whole output first: the chain then runs twice.
public struct FilterJob {
  /// What the output holds.
  public enum Output: Sendable {
    /// float32 (H, W, C) values as the filters made them; (H, W) for an
    /// (H, W) .npy input.
    case npy
    /// Samples at `bitDepth` (the input's when nil, 8 for .npy) made by
    /// `mapping` from `value * scale + offset`; values keep the input's
    /// scale, so another depth rescales them. JPEG stores 8 bits without
    /// alpha.
    case image(ImageFormat, bitDepth: Image.BitDepth?, mapping: ValueMapping, scale: Float, offset: Float,
               quality: Int, compressionLevel: Int)
  }

  /// Milliseconds spent reading and decoding, filtering, and mapping,
  /// encoding and writing; decoding and encoding happen between blocks of
  /// filtered rows, and are counted apart from them.
  public struct Timings: Sendable {
    public var read = 0.0, filter = 0.0, write = 0.0
  }

  public var chain: FilterChain
  /// Filter one channel of BT.601 luma instead of each colour channel.
  public var gray = false
  /// Filter the alpha channel too instead of passing it through.
  public var filterAlpha = false
  public var decodeOptions = DecodeOptions()
  public var threads = Parallel.coreCount

  public init(chain: FilterChain, gray: Bool = false, filterAlpha: Bool = false,
              decodeOptions: DecodeOptions = DecodeOptions(), threads: Int = Parallel.coreCount) {
    self.chain = chain
    self.gray = gray
    self.filterAlpha = filterAlpha
    self.decodeOptions = decodeOptions
    self.threads = threads
  }

  /// Filters `input` into `path`, which appears whole or not at all.
  /// - Parameter progress: called once the output's height is known, with
  ///   it; returns what to call with each count of rows done.
  /// - Throws: `FileError`, `PNGError`, `JPEGError`, `NPYError`,
  ///   `FilterError`, `ImageConversionError`.
  @discardableResult
  public func run(input: String, output path: String, as output: Output,
                  progress: (_ rows: Int) -> ((Int) -> Void)? = { _ in nil }) throws -> Timings {
    var timings = Timings()
    let clock = ContinuousClock()
    let start = clock.now
    let source = try measure(&timings.read) { try Source(path: input, job: self) }
    let size = try chain.outputSize(height: source.height, width: source.width)
    let passThrough = source.alpha && !filterAlpha ? source.channels - 1 : nil
    let sink = try Sink(path: path, output: output, source: source, height: size.height, width: size.width,
                        passThrough: passThrough)
    let advance = progress(size.height)
    if sink.needsRange {
      // The first pass only finds the range; its rows count toward `filter`.
      var range = (low: Float.infinity, high: -Float.infinity)
      try stream(source.reopened(job: self), passThrough: passThrough, timings: &timings) { rows, count in
        let band = ValueMapping.range(of: UnsafeBufferPointer(start: rows, count: count * size.width * source.channels),
                                      channels: source.channels, scale: sink.scale, offset: sink.offset,
                                      rawChannel: passThrough)
        range = (min(range.low, band.low), max(range.high, band.high))
      }
      sink.range = range
    }
    var writeTime = 0.0
    try stream(source, passThrough: passThrough, timings: &timings) { rows, count in
      try measure(&writeTime) { try sink.write(rows, count: count) }
      advance?(count)
    }
    try measure(&writeTime) { try sink.commit() }
    timings.write = writeTime
    timings.filter = max(0, (clock.now - start).milliseconds - timings.read - timings.write)
    return timings
  }

  private func stream(_ source: Source, passThrough: Int?, timings: inout Timings,
                      write: (UnsafePointer<Float>, Int) throws -> Void) throws {
    var readTime = 0.0
    try chain.stream(height: source.height, width: source.width, channels: source.channels, threads: threads,
                     passThrough: passThrough,
                     read: { target, rows in try measure(&readTime) { try source.read(target, rows) } },
                     write: { rows, range in try write(rows, range.count) })
    // Rows no output reads (a valid padding, a stride) are decoded all the
    // same: a file cut there fails as it would read whole.
    try measure(&readTime) { try source.finish() }
    timings.read += readTime
  }
}

/// Adds the milliseconds `body` takes to `total`.
private func measure<T>(_ total: inout Double, _ body: () throws -> T) rethrows -> T {
  let clock = ContinuousClock()
  let start = clock.now
  defer { total += (clock.now - start).milliseconds }
  return try body()
}

/// The input of a `FilterJob` as float32 rows, top to bottom: decoded a
/// band at a time, or copied from an array read whole.
private final class Source {
  let path: String
  let height: Int, width: Int, channels: Int
  /// The stored depth (8 for .npy), for the output's default depth.
  let bitDepth: Image.BitDepth
  let alpha: Bool
  /// An (H, W) .npy array.
  let rank2: Bool
  private var reader: ImageRowReader?
  private let whole: Tensor?  // (H, W, C)
  private let gray: Bool

  init(path: String, job: FilterJob) throws {
    self.path = path
    gray = job.gray
    if try FileIO.readPrefix(path, count: NPY.magicBytes.count) == NPY.magicBytes {
      var tensor = try NPY.readTensor(path)
      let shape = tensor.shape
      guard shape.count == 2 || shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
        throw NPYError.incompatible(reason: "expected an (H, W) or (H, W, C) array, got shape \(NPY.tupleText(shape))")
      }
      if job.gray { throw NPYError.incompatible(reason: "--gray takes images, not arrays") }
      if shape.count == 2 { tensor = tensor.reshaped(shape + [1]) }
      (whole, reader, bitDepth, alpha, rank2) = (tensor, nil, .eight, false, shape.count == 2)
      (height, width, channels) = (tensor.shape[0], tensor.shape[1], tensor.shape[2])
      return
    }
    let reader = try ImageRowReader(path: path, options: job.decodeOptions)
    (bitDepth, alpha, rank2) = (reader.bitDepth, reader.pixelFormat.hasAlpha && !job.gray, false)
    if job.decodeOptions.applyOrientation && reader.orientation != .up {
      // Turning needs every row: read whole, under the memory budget.
      let image = try ImageFile.read(path, options: job.decodeOptions)
      whole = Tensor(image, scale: .factor(1), gray: job.gray)
      self.reader = nil
      (height, width) = (image.height, image.width)
    } else {
      whole = nil
      self.reader = reader
      (height, width) = (reader.height, reader.width)
    }
    channels = job.gray ? 1 : reader.pixelFormat.channels
  }

  /// The same input from its first row (the file is opened again).
  func reopened(job: FilterJob) throws -> Source {
    whole == nil ? try Source(path: path, job: job) : self
  }

  /// Fills `target` with rows `rows`, `width * channels` floats each.
  func read(_ target: UnsafeMutablePointer<Float>, _ rows: Range<Int>) throws {
    let length = width * channels
    if let whole {
      whole.withUnsafeBufferPointer { target.update(from: $0.baseAddress! + rows.lowerBound * length, count: rows.count * length) }
      return
    }
    guard let reader else { return }
    let band = try reader.readBand(rows.count)
    Tensor(band, scale: .factor(1), gray: gray).withUnsafeBufferPointer { target.update(from: $0.baseAddress!, count: rows.count * length) }
  }

  /// Decodes the rows no one asked for and checks the file's end.
  func finish() throws {
    guard let reader else { return }
    let rest = reader.height - reader.nextRow
    for start in stride(from: 0, to: rest, by: 64) {
      _ = try reader.readBand(min(64, rest - start))
    }
    try reader.finish()
    self.reader = nil
  }
}

/// Where a `FilterJob`'s rows go: an .npy file, or samples encoded as
/// they come.
private final class Sink {
  let needsRange: Bool
  let scale: Float, offset: Float
  var range: (low: Float, high: Float)?
  private let width: Int, channels: Int
  private let passThrough: Int?
  private let npy: AtomicFileWriter?
  private let image: ImageRowWriter?
  private let mapping: ValueMapping
  private let depth: Image.BitDepth
  private let dropsAlpha: Bool

  init(path: String, output: FilterJob.Output, source: Source, height: Int, width: Int, passThrough: Int?) throws {
    self.width = width
    channels = source.channels
    self.passThrough = passThrough
    switch output {
    case .npy:
      let writer = try AtomicFileWriter(path: path)
      let shape = source.rank2 ? [height, width] : [height, width, channels]
      try writer.write(NPY.header(dtype: .float32, shape: shape))
      (npy, image, mapping, depth, scale, offset, dropsAlpha) = (writer, nil, .clamp, .eight, 1, 0, false)
    case .image(let format, let bitDepth, let mapping, let scale, let offset, let quality, let level):
      guard let pixelFormat = Image.PixelFormat(channels: channels) else {
        throw ImageConversionError.unsupportedShape([height, width, channels])
      }
      var depth = bitDepth ?? source.bitDepth
      // Values keep the input's scale; a different output depth rescales them.
      let rescale: Float = depth == source.bitDepth ? 1 : depth == .sixteen ? 257 : 1 / 257
      var stored = pixelFormat
      if format == .jpeg {
        (stored, depth) = (pixelFormat == .rgba ? .rgb : pixelFormat == .grayAlpha ? .gray : pixelFormat, .eight)
      }
      // JPEG stores 8 bits: samples are mapped at the depth asked for, then converted.
      self.depth = bitDepth ?? source.bitDepth
      image = try ImageRowWriter(path: path, format: format, width: width, height: height, pixelFormat: stored,
                                 bitDepth: depth, quality: quality, compressionLevel: level)
      (npy, self.mapping, self.scale, self.offset, dropsAlpha) = (nil, mapping, scale * rescale, offset * rescale,
                                                                   stored != pixelFormat)
    }
    needsRange = image != nil && mapping == .normalize
  }

  func write(_ rows: UnsafePointer<Float>, count: Int) throws {
    let length = count * width * channels
    if let npy {
      try npy.write(UnsafeRawBufferPointer(start: rows, count: length * MemoryLayout<Float>.stride))
      return
    }
    guard let image else { return }
    let band = Tensor(shape: [count, width, channels], values: Array(UnsafeBufferPointer(start: rows, count: length)))
    var samples = try Image(mapping: band, bitDepth: depth, mapping: mapping, scale: scale, offset: offset,
                            rawChannel: passThrough, range: range)
    if dropsAlpha { samples = samples.droppingAlpha() }
    if samples.bitDepth != image.bitDepth { samples = samples.converted(to: image.bitDepth) }
    try samples.withUnsafeBytes { try image.write($0.baseAddress!, count: count) }
  }

  func commit() throws {
    try npy?.commit()
    try image?.commit()
  }
}
