import AtrousCore
import AtrousIO
import AtrousNN

/// The image a hypercolumn run reads, as its tiles ask for crops of it:
/// a network input held whole, or an image file decoded top to bottom, a
/// band of rows at a time.
///
/// Tiles come in row order and their crops only move down, so a streamed
/// input holds the rows of one row of tiles' crops (with their margins),
/// not the image: on a large image, the memory a tiled run takes depends
/// on the width and the tile, not on the height. Each pass over the tiles
/// (a sample for the preview, then the export) decodes the file again.
public final class HypercolumnInput {
  public let height: Int, width: Int, channels: Int
  /// The file the rows come from ("" for an input in memory).
  let path: String
  private let whole: Tensor?  // (1, H, W, C)
  /// Opens the file again; the reader gives the next `count` rows,
  /// preprocessed, as (count, W, C).
  private let open: (() throws -> (Int) throws -> Tensor)?
  private var next: ((Int) throws -> Tensor)?
  /// Rows [first, first + heldRows) of the image, at the start of `held`.
  private var held = Tensor.uninitialized(shape: [0])  // (capacity, W, C)
  private var first = 0, heldRows = 0
  /// The next row the reader gives.
  private var readRows = 0

  /// A network input, (1, C, H, W) in any layout.
  public init(_ input: NDArray) {
    let image = input.toChannelsLast().storage!
    (height, width, channels) = (image.shape[1], image.shape[2], image.shape[3])
    whole = image
    open = nil
    path = ""
  }

  private init(path: String, height: Int, width: Int, channels: Int, open: @escaping () throws -> (Int) throws -> Tensor) {
    (self.height, self.width, self.channels) = (height, width, channels)
    self.path = path
    whole = nil
    self.open = open
  }

  /// The network input of an image file under `preparation`: streamed
  /// when the preparation keeps the image's size and the file needs no
  /// turning (EXIF orientation), else decoded whole under the memory budget.
  /// - Throws: `FileError`, `PNGError`, `JPEGError`, `ImageConversionError`.
  public static func file(_ path: String, preparation: ImagePreprocessing,
                          options: DecodeOptions = DecodeOptions()) throws -> HypercolumnInput {
    let reader = try ImageRowReader(path: path, options: options)
    let sameSize = preparation.outputSize(height: reader.height, width: reader.width) == (reader.height, reader.width)
    guard sameSize, !(options.applyOrientation && reader.orientation != .up) else {
      return HypercolumnInput(try preparation.tensor(ImageFile.read(path, options: options)))
    }
    let colours = reader.pixelFormat.hasAlpha ? reader.pixelFormat.channels - 1 : reader.pixelFormat.channels
    // Checks the preparation against the channels (mean, std) before any work.
    _ = try preparation.tensor(Image(width: 1, height: 1, format: reader.pixelFormat, bitDepth: reader.bitDepth))
    return HypercolumnInput(path: path, height: reader.height, width: reader.width, channels: preparation.gray ? 1 : colours) {
      let reader = try ImageRowReader(path: path, options: options)
      return { count in
        let band = try reader.readBand(count)
        if reader.nextRow == reader.height { try reader.finish() }
        let rows = try preparation.tensor(band).toChannelsLast().storage!  // (1, count, W, C)
        return rows.reshaped([count, reader.width, rows.shape[3]])
      }
    }
  }

  /// The input's shape as a network input: (1, C, H, W).
  public var shape: [Int] { [1, channels, height, width] }

  /// Starts a new pass over the tiles: a streamed input reads its file
  /// from the top again.
  func rewind() {
    guard open != nil else { return }
    next = nil
    (first, heldRows, readRows) = (0, 0, 0)
  }

  /// Rows and columns of the input, (1, rows, columns, C). A streamed
  /// input takes crops whose rows never move up.
  /// - Throws: what decoding throws, `FileError.exceedsMemoryBudget`
  ///   when the rows to hold would not fit the budget.
  func crop(rows: Range<Int>, columns: Range<Int>) throws -> Tensor {
    if let whole {
      if rows == 0..<height && columns == 0..<width { return whole }
      return Self.crop(whole, rows: rows, columns: columns)
    }
    try hold(rows)
    let local = (rows.lowerBound - first)..<(rows.upperBound - first)
    return Self.crop(held.reshaped([1] + held.shape), rows: local, columns: columns)
  }

  /// Reads down to the end of `rows` and drops the rows above them.
  private func hold(_ rows: Range<Int>) throws {
    precondition(rows.lowerBound >= first, "crops of a streamed input move down")
    if next == nil { next = try open!() }
    let length = width * channels
    // Held rows that the crop still wants move to the top.
    let from = rows.lowerBound - first, keep = max(0, heldRows - from)
    if rows.count > (held.rank == 3 ? held.shape[0] : 0) {
      try MemoryBudget.check(rows.count * length, of: 4) {
        FileError.exceedsMemoryBudget(path: path, what: "holding \(rows.count) rows of \(width) pixels for a row of tiles",
                                      bytes: $0, budget: $1)
      }
      var grown = Tensor.uninitialized(shape: [rows.count, width, channels])  // (capacity, W, C)
      if keep > 0 {
        held.withUnsafeBufferPointer { old in
          grown.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: old.baseAddress! + from * length, count: keep * length) }
        }
      }
      held = grown
    } else if keep > 0 && from > 0 {
      held.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: $0.baseAddress! + from * length, count: keep * length) }
    }
    (first, heldRows) = (rows.lowerBound, keep)
    // Rows between the last crop and this one (tiles a sample skips) are
    // decoded and dropped.
    while readRows < rows.upperBound {
      let band = try next!(min(64, rows.upperBound - readRows))  // (count, W, C)
      let count = band.shape[0], skip = max(0, first - readRows)
      if skip < count {
        held.withUnsafeMutableBufferPointer { target in
          band.withUnsafeBufferPointer { source in
            (target.baseAddress! + heldRows * length).update(from: source.baseAddress! + skip * length,
                                                             count: (count - skip) * length)
          }
        }
        heldRows += count - skip
      }
      readRows += count
    }
  }

  /// Rows and columns of a (1, H, W, C) tensor.
  static func crop(_ image: Tensor, rows: Range<Int>, columns: Range<Int>) -> Tensor {
    let (w, c) = (image.shape[2], image.shape[3])
    var out = Tensor.uninitialized(shape: [1, rows.count, columns.count, c])
    image.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for (i, y) in rows.enumerated() {
          (dst.baseAddress! + i * columns.count * c).update(from: src.baseAddress! + (y * w + columns.lowerBound) * c,
                                                            count: columns.count * c)
        }
      }
    }
    return out
  }
}
