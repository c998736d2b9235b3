import AtrousIO

/// A list of pixels given as text, one `x,y` pair per line (pixel indices,
/// x along the row): what `--pixels` reads.
///
/// The two numbers may be separated by a comma, a semicolon, a tab or
/// spaces; lines may end in CRLF; blank lines are skipped, and so is a
/// first line with no number in it (a header such as `x,y`). A number
/// may be written as a float when it is whole (`10.0`, as pandas and
/// NumPy write them).
public enum PixelList {
  /// - Throws: `FileError` when the file cannot be read, `PixelListError`
  ///   for a line that is not a pair of whole numbers, or no pairs at all.
  public static func read(_ path: String) throws -> [(x: Int, y: Int)] {
    try parse(String(decoding: FileIO.readAll(path), as: UTF8.self))
  }

  /// The pairs of `text`, in order.
  public static func parse(_ text: String) throws -> [(x: Int, y: Int)] {
    var points: [(x: Int, y: Int)] = []
    var seenContent = false
    // CRLF is one Character in Swift, and a newline like LF.
    for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
      let fields = line.split(whereSeparator: { $0 == "," || $0 == ";" || $0 == " " || $0 == "\t" }).map(String.init)
      if fields.isEmpty { continue }
      defer { seenContent = true }
      let numbers = fields.map(number)
      if !seenContent && numbers.allSatisfy({ $0 == nil }) && fields.allSatisfy({ Double($0) == nil }) { continue }
      guard fields.count == 2 else {
        throw PixelListError.badLine(line: index + 1, text: String(line), reason: "expected two numbers, x and y, found \(fields.count) fields")
      }
      for (field, value) in zip(fields, numbers) where value == nil {
        throw PixelListError.badLine(line: index + 1, text: String(line), reason: "'\(field)' is not a whole pixel index")
      }
      points.append((numbers[0]!, numbers[1]!))
    }
    guard !points.isEmpty else { throw PixelListError.empty }
    return points
  }

  /// A whole number, written as an integer or as a float with no fraction.
  private static func number(_ field: String) -> Int? {
    if let value = Int(field) { return value }
    guard let value = Double(field), value.isFinite, value == value.rounded(), abs(value) < 1e15 else { return nil }
    return Int(value)
  }
}

/// Why a pixel list could not be read.
public enum PixelListError: Error, Equatable, CustomStringConvertible {
  /// A line that is not a pair of whole numbers (1-based line number).
  case badLine(line: Int, text: String, reason: String)
  /// No pairs in the file.
  case empty

  public var description: String {
    switch self {
    case .badLine(let line, let text, let reason): "line \(line) ('\(text)'): \(reason)"
    case .empty: "no x,y pixels in the file"
    }
  }
}
