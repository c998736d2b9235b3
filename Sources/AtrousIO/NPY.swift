import AtrousCore
import _CKernels

/// Why an `.npy` file could not be read or written.
public enum NPYError: Error, Equatable, CustomStringConvertible {
  /// The file does not start with "\x93NUMPY".
  case notNPY
  case unsupportedVersion(major: Int, minor: Int)
  /// The header dictionary could not be parsed; the reason says where.
  case malformedHeader(reason: String)
  case unsupportedDType(descr: String)
  /// Fortran-ordered arrays are not read; save with C order.
  case fortranOrder
  /// Fewer data bytes than the shape and dtype need.
  case truncated(expectedBytes: Int, actualBytes: Int)
  /// The array cannot become what was asked (dtype, rank, channel count).
  case incompatible(reason: String)
  /// A `.npz` member would inflate to more than the memory budget.
  case exceedsMemoryBudget(member: String, bytes: Int, budget: MemoryBudget)

  public var description: String {
    switch self {
    case .notNPY: "not a NumPy .npy file (bad magic)"
    case .unsupportedVersion(let major, let minor): "unsupported .npy format version \(major).\(minor)"
    case .malformedHeader(let reason): "malformed .npy header: \(reason)"
    case .unsupportedDType(let descr): "unsupported .npy dtype '\(descr)'"
    case .fortranOrder: "Fortran-ordered .npy arrays are not supported (save in C order)"
    case .truncated(let expected, let actual):
      "truncated .npy data: \(actual) bytes where the shape needs \(expected)"
    case .incompatible(let reason): reason
    case .exceedsMemoryBudget(let member, let bytes, let budget):
      "\(member) would inflate to \(MemoryBudget.format(bytes)), more than \(budget)"
    }
  }
}

/// The element types Atrous reads and writes in `.npy` files.
public enum NPYDType: String, Sendable, CaseIterable {
  case float16, float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool

  /// Bytes per element.
  public var itemSize: Int {
    switch self {
    case .uint8, .int8, .bool: 1
    case .float16, .uint16, .int16: 2
    case .float32, .int32, .uint32: 4
    case .float64, .int64, .uint64: 8
    }
  }

  /// Whether the elements are floating point.
  public var isFloatingPoint: Bool { self == .float16 || self == .float32 || self == .float64 }

  /// The descriptor numpy writes for this type on a little-endian machine.
  public var descr: String {
    switch self {
    case .float16: "<f2"
    case .float32: "<f4"
    case .float64: "<f8"
    case .int8: "|i1"
    case .int16: "<i2"
    case .int32: "<i4"
    case .int64: "<i8"
    case .uint8: "|u1"
    case .uint16: "<u2"
    case .uint32: "<u4"
    case .uint64: "<u8"
    case .bool: "|b1"
    }
  }

  /// Parses a descriptor: byte order '<', '>', '|' or '=' then kind and size.
  /// Returns the type and whether its bytes are big-endian.
  static func parse(_ descr: String) -> (NPYDType, bigEndian: Bool)? {
    var text = Substring(descr)
    var bigEndian = false
    if let first = text.first, "<>|=".contains(first) {
      bigEndian = first == ">"
      text = text.dropFirst()
    }
    let type: NPYDType
    switch text {
    case "f2", "e": type = .float16
    case "f4", "f": type = .float32
    case "f8", "d": type = .float64
    case "i1", "b": type = .int8
    case "i2", "h": type = .int16
    case "i4", "i": type = .int32
    case "i8", "q", "l": type = .int64
    case "u1", "B": type = .uint8
    case "u2", "H": type = .uint16
    case "u4", "I": type = .uint32
    case "u8", "Q", "L": type = .uint64
    case "b1", "?": type = .bool
    default: return nil
    }
    return (type, bigEndian && type.itemSize > 1)
  }
}

/// An n-dimensional array as stored in an `.npy` file: a dtype, a shape and
/// the elements' bytes in C order, little-endian.
public struct NPYArray: Sendable, Equatable {
  public var dtype: NPYDType
  /// Empty for a 0-d (scalar) array.
  public var shape: [Int]
  /// `count * dtype.itemSize` bytes, little-endian, C order.
  public var bytes: [UInt8]

  public var count: Int { shape.reduce(1, *) }

  public init(dtype: NPYDType, shape: [Int], bytes: [UInt8]) {
    precondition(shape.allSatisfy { $0 >= 0 } && bytes.count == shape.reduce(1, *) * dtype.itemSize,
                 "\(bytes.count) bytes do not hold \(shape) of \(dtype)")
    self.dtype = dtype
    self.shape = shape
    self.bytes = bytes
  }

  /// An integer array of `T`'s own dtype (any of Swift's fixed-width
  /// integers of 8 to 64 bits but `Int` and `UInt`).
  public init<T: FixedWidthInteger>(shape: [Int], integers: [T]) {
    let dtype: NPYDType
    switch T.self {
    case is Int8.Type: dtype = .int8
    case is Int16.Type: dtype = .int16
    case is Int32.Type: dtype = .int32
    case is Int64.Type: dtype = .int64
    case is UInt8.Type: dtype = .uint8
    case is UInt16.Type: dtype = .uint16
    case is UInt32.Type: dtype = .uint32
    case is UInt64.Type: dtype = .uint64
    default: preconditionFailure("no .npy dtype for \(T.self)")
    }
    self.init(dtype: dtype, shape: shape, bytes: integers.withUnsafeBytes { Array($0) })
  }

  /// A float32 array with the given shape.
  public init(shape: [Int], floats: [Float]) {
    self.init(dtype: .float32, shape: shape, bytes: floats.withUnsafeBytes { Array($0) })
  }

  /// A float32 array holding the tensor's elements and shape.
  /// A float32 tensor stored as float16 (rounded to nearest even).
  public init(float16 tensor: Tensor) {
    var bytes = [UInt8](repeating: 0, count: tensor.count * 2)
    tensor.withUnsafeBufferPointer { values in
      bytes.withUnsafeMutableBytes { _ = Float16Bits.convert(values, into: $0) }
    }
    self.init(dtype: .float16, shape: tensor.shape, bytes: bytes)
  }

  public init(_ tensor: Tensor) {
    self.init(dtype: .float32, shape: tensor.shape, bytes: tensor.withUnsafeBytes { Array($0) })
  }

  /// The image's samples unscaled: uint8 or uint16, shape (H, W, C).
  public init(_ image: Image) {
    self.init(dtype: image.bitDepth == .eight ? .uint8 : .uint16,
              shape: [image.height, image.width, image.channels],
              bytes: image.withUnsafeBytes { Array($0) })
  }

  /// Every element converted to `Double` (bool as 0 or 1), in C order.
  public var doubles: [Double] {
    var out = [Double](repeating: 0, count: count)
    visit(floating: { i, v in out[i] = v }, integer: { i, v in out[i] = Double(v) }, unsigned: { i, v in out[i] = Double(v) })
    return out
  }

  /// Every element as an integer, in C order: floats truncated toward
  /// zero (NaN and values out of range become 0), unsigned 64-bit values
  /// kept as their bit pattern.
  public var int64s: [Int64] {
    var out = [Int64](repeating: 0, count: count)
    visit(floating: { i, v in out[i] = v.isFinite && Swift.abs(v) < 9.2e18 ? Int64(v.rounded(.towardZero)) : 0 },
          integer: { i, v in out[i] = v }, unsigned: { i, v in out[i] = Int64(bitPattern: v) })
    return out
  }

  /// The array as a Float32 tensor of the same shape (any dtype converts).
  public func tensor() -> Tensor {
    var tensor = Tensor(shape: shape)
    tensor.withUnsafeMutableBufferPointer { out in
      visit(floating: { i, v in out[i] = Float(v) }, integer: { i, v in out[i] = Float(v) },
            unsigned: { i, v in out[i] = Float(v) })
    }
    return tensor
  }

  /// Calls one of the closures with each element's index and value, by
  /// the kind of the dtype.
  private func visit(floating: (Int, Double) -> Void, integer: (Int, Int64) -> Void, unsigned: (Int, UInt64) -> Void) {
    bytes.withUnsafeBytes { raw in
      func each<T>(_: T.Type, _ body: (Int, T) -> Void) {
        for (i, v) in raw.bindMemory(to: T.self).enumerated() { body(i, v) }
      }
      switch dtype {
      case .float16: each(Float16.self) { floating($0, Double($1)) }
      case .float32: each(Float.self) { floating($0, Double($1)) }
      case .float64: each(Double.self, floating)
      case .int8: each(Int8.self) { integer($0, Int64($1)) }
      case .int16: each(Int16.self) { integer($0, Int64($1)) }
      case .int32: each(Int32.self) { integer($0, Int64($1)) }
      case .int64: each(Int64.self, integer)
      case .uint8, .bool: each(UInt8.self) { unsigned($0, UInt64($1)) }
      case .uint16: each(UInt16.self) { unsigned($0, UInt64($1)) }
      case .uint32: each(UInt32.self) { unsigned($0, UInt64($1)) }
      case .uint64: each(UInt64.self, unsigned)
      }
    }
  }
}

/// Reading and writing NumPy's `.npy` format (versions 1.0, 2.0 and 3.0),
/// byte for byte as `numpy.save` writes it and `numpy.load` reads it.
public enum NPY {
  /// The six bytes every `.npy` file starts with: "\x93NUMPY".
  public static let magicBytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
  /// numpy aligns the data to this many bytes from the file's start.
  static let alignment = 64
  /// numpy leaves room for the first axis to grow to this many digits.
  static let growthAxisDigits = 21

  /// Parses a whole `.npy` file.
  /// - Throws: `NPYError`.
  public static func decode(_ file: [UInt8]) throws -> NPYArray {
    let header = try parseHeader(file)
    let byteCount = header.count * header.dtype.itemSize
    let available = file.count - header.dataOffset
    guard available >= byteCount else {
      throw NPYError.truncated(expectedBytes: byteCount, actualBytes: available)
    }
    var bytes = Array(file[header.dataOffset..<(header.dataOffset + byteCount)])
    if header.bigEndian { swapBytes(&bytes, itemSize: header.dtype.itemSize) }
    return NPYArray(dtype: header.dtype, shape: header.shape, bytes: bytes)
  }

  /// The complete file for `array`.
  public static func encode(_ array: NPYArray) -> [UInt8] {
    header(dtype: array.dtype, shape: array.shape) + array.bytes
  }

  /// The magic, version, length and padded header dictionary that precede
  /// the data, exactly as numpy writes them (version 1.0 unless the header
  /// needs the 4-byte length of 2.0).
  public static func header(dtype: NPYDType, shape: [Int]) -> [UInt8] {
    var dictionary = "{'descr': '\(dtype.descr)', 'fortran_order': False, 'shape': \(tupleText(shape)), }"
    if let first = shape.first {
      dictionary += String(repeating: " ", count: max(growthAxisDigits - String(first).count, 0))
    }
    let text = Array(dictionary.utf8)
    for (major, lengthBytes) in [(1, 2), (2, 4)] {
      let unpadded = magicBytes.count + 2 + lengthBytes + text.count + 1
      let padding = alignment - unpadded % alignment
      let length = text.count + padding + 1
      if lengthBytes == 2 && length > 0xFFFF { continue }
      var out = magicBytes + [UInt8(major), 0]
      for i in 0..<lengthBytes { out.append(UInt8((length >> (8 * i)) & 0xFF)) }
      out += text
      out += [UInt8](repeating: 0x20, count: padding)
      out.append(0x0A)
      return out
    }
    preconditionFailure("unreachable: version 2.0 holds any header")
  }

  /// Reads an `.npy` file.
  /// - Throws: `FileError` or `NPYError`.
  public static func read(_ path: String) throws -> NPYArray {
    try decode(FileIO.readAll(path))
  }

  /// Reads an `.npy` file of any supported dtype straight into a Float32
  /// tensor of the same shape, without holding the file's bytes as well:
  /// float32 data is read in place, other types a chunk at a time.
  /// - Throws: `FileError` or `NPYError`.
  public static func readTensor(_ path: String) throws -> Tensor {
    let file = try ReadableFile(path: path)
    var head = try file.read(upTo: 4096)
    if head.count >= 12, head.starts(with: magicBytes) {
      // Headers longer than the first read (huge shapes) are read whole.
      let lengthBytes = head[6] == 1 ? 2 : 4
      var length = 0
      for i in 0..<lengthBytes { length |= Int(head[8 + i]) << (8 * i) }
      let needed = 8 + lengthBytes + length
      if needed > head.count && needed <= 1 << 24 { head += try file.read(upTo: needed - head.count) }
    }
    let header = try parseHeader(head)
    let byteCount = header.count * header.dtype.itemSize
    // The data must be there before memory is set aside for it: a header
    // may claim any shape.
    let stored = file.size - header.dataOffset
    guard stored >= byteCount else { throw NPYError.truncated(expectedBytes: byteCount, actualBytes: max(0, stored)) }
    try MemoryBudget.check(header.count, of: 4) {
      FileError.exceedsMemoryBudget(path: path, what: "its \(tupleText(header.shape)) array as float32", bytes: $0, budget: $1)
    }
    var tensor = Tensor.uninitialized(shape: header.shape)
    try file.seek(to: header.dataOffset)
    if header.dtype == .float32 && !header.bigEndian {
      let got = try tensor.withUnsafeMutableBufferPointer { try file.read(into: UnsafeMutableRawBufferPointer($0)) }
      guard got == byteCount else { throw NPYError.truncated(expectedBytes: byteCount, actualBytes: got) }
      return tensor
    }
    // Other dtypes: convert a chunk at a time through NPYArray's conversion.
    let chunkElements = max(1, (1 << 20) / header.dtype.itemSize)
    var done = 0
    try tensor.withUnsafeMutableBufferPointer { out in
      while done < header.count {
        let n = min(chunkElements, header.count - done)
        var bytes = try file.read(upTo: n * header.dtype.itemSize)
        guard bytes.count == n * header.dtype.itemSize else {
          throw NPYError.truncated(expectedBytes: byteCount, actualBytes: done * header.dtype.itemSize + bytes.count)
        }
        if header.bigEndian { swapBytes(&bytes, itemSize: header.dtype.itemSize) }
        let chunk = NPYArray(dtype: header.dtype, shape: [n], bytes: bytes).tensor()
        chunk.withUnsafeBufferPointer { values in
          (out.baseAddress! + done).update(from: values.baseAddress!, count: n)
        }
        done += n
      }
    }
    return tensor
  }

  /// Writes `array` to `path` atomically.
  public static func write(_ array: NPYArray, to path: String) throws {
    let writer = try AtomicFileWriter(path: path)
    try writer.write(header(dtype: array.dtype, shape: array.shape))
    try writer.write(array.bytes)
    try writer.commit()
  }

  /// Writes a tensor as float32 (or float16) without copying its elements
  /// into an intermediate array.
  public static func write(_ tensor: Tensor, to path: String, as dtype: NPYDType = .float32) throws {
    precondition(dtype == .float32 || dtype == .float16, "tensors are written as float32 or float16")
    let writer = try AtomicFileWriter(path: path)
    try writer.write(header(dtype: dtype, shape: tensor.shape))
    if dtype == .float32 {
      try tensor.withUnsafeBytes { try writer.write($0) }
    } else {
      // Float16(_:) rounds to nearest even, as numpy's astype(float16) does.
      let halves = tensor.withUnsafeBufferPointer { $0.map { Float16($0) } }
      try halves.withUnsafeBytes { try writer.write($0) }
    }
    try writer.commit()
  }

  // MARK: - Header parsing

  struct Header {
    var dtype: NPYDType
    var bigEndian: Bool
    var shape: [Int]
    var count: Int
    var dataOffset: Int
  }

  static func parseHeader(_ file: [UInt8]) throws -> Header {
    guard file.count >= 10, file.starts(with: magicBytes) else { throw NPYError.notNPY }
    let major = Int(file[6]), minor = Int(file[7])
    let lengthBytes: Int
    switch (major, minor) {
    case (1, 0): lengthBytes = 2
    case (2, 0), (3, 0): lengthBytes = 4
    default: throw NPYError.unsupportedVersion(major: major, minor: minor)
    }
    guard file.count >= 8 + lengthBytes else { throw NPYError.truncated(expectedBytes: 8 + lengthBytes, actualBytes: file.count) }
    var length = 0
    for i in 0..<lengthBytes { length |= Int(file[8 + i]) << (8 * i) }
    let start = 8 + lengthBytes
    guard file.count - start >= length else {
      throw NPYError.malformedHeader(reason: "header length \(length) runs past the end of the file")
    }
    // Versions 1 and 2 are Latin-1; every character we accept is ASCII.
    let text = Array(file[start..<(start + length)])
    var parser = HeaderParser(text: text)
    let fields = try parser.parseDictionary()

    guard case .string(let descr)? = fields["descr"] else {
      throw NPYError.malformedHeader(reason: "no 'descr' string")
    }
    guard let (dtype, bigEndian) = NPYDType.parse(descr) else { throw NPYError.unsupportedDType(descr: descr) }
    guard case .bool(let fortran)? = fields["fortran_order"] else {
      throw NPYError.malformedHeader(reason: "no 'fortran_order' boolean")
    }
    guard case .tuple(let shape)? = fields["shape"] else {
      throw NPYError.malformedHeader(reason: "no 'shape' tuple")
    }
    var count = 1
    for extent in shape {
      let (product, overflow) = count.multipliedReportingOverflow(by: extent)
      guard !overflow, product.multipliedReportingOverflow(by: dtype.itemSize).overflow == false else {
        throw NPYError.malformedHeader(reason: "shape \(shape) is too large")
      }
      count = product
    }
    // A shape with a single axis may be stored in either order.
    if fortran && shape.filter({ $0 > 1 }).count > 1 { throw NPYError.fortranOrder }
    return Header(dtype: dtype, bigEndian: bigEndian, shape: shape, count: count, dataOffset: start + length)
  }

  static func swapBytes(_ bytes: inout [UInt8], itemSize: Int) {
    guard itemSize > 1 else { return }
    var i = 0
    while i < bytes.count {
      bytes[i..<(i + itemSize)].reverse()
      i += itemSize
    }
  }

  /// A shape as Python prints a tuple: (), (5,), (2, 3).
  public static func tupleText(_ shape: [Int]) -> String {
    switch shape.count {
    case 0: "()"
    case 1: "(\(shape[0]),)"
    default: "(" + shape.map(String.init).joined(separator: ", ") + ")"
    }
  }
}

/// A parser for the Python literal in an `.npy` header: a dict whose values
/// are strings, booleans or tuples of non-negative integers.
struct HeaderParser {
  enum Value: Equatable {
    case string(String)
    case bool(Bool)
    case tuple([Int])
  }

  let text: [UInt8]
  var position = 0

  init(text: [UInt8]) { self.text = text }

  mutating func parseDictionary() throws -> [String: Value] {
    skipSpace()
    try expect(UInt8(ascii: "{"))
    var fields: [String: Value] = [:]
    while true {
      skipSpace()
      if peek() == UInt8(ascii: "}") {
        position += 1
        break
      }
      let key = try parseString()
      skipSpace()
      try expect(UInt8(ascii: ":"))
      skipSpace()
      fields[key] = try parseValue()
      skipSpace()
      if peek() == UInt8(ascii: ",") { position += 1; continue }
      skipSpace()
      try expect(UInt8(ascii: "}"))
      break
    }
    return fields
  }

  private mutating func parseValue() throws -> Value {
    switch peek() {
    case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try parseString())
    case UInt8(ascii: "("): return .tuple(try parseTuple())
    case UInt8(ascii: "T"):
      try expectWord("True")
      return .bool(true)
    case UInt8(ascii: "F"):
      try expectWord("False")
      return .bool(false)
    case UInt8(ascii: "["):
      throw NPYError.unsupportedDType(descr: "structured dtype")
    default:
      throw NPYError.malformedHeader(reason: "unexpected character at offset \(position)")
    }
  }

  private mutating func parseString() throws -> String {
    guard let quote = peek(), quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else {
      throw NPYError.malformedHeader(reason: "expected a quoted key at offset \(position)")
    }
    position += 1
    let start = position
    while let c = peek(), c != quote { position += 1 }
    guard peek() == quote else { throw NPYError.malformedHeader(reason: "unterminated string") }
    let value = String(decoding: text[start..<position], as: UTF8.self)
    position += 1
    return value
  }

  private mutating func parseTuple() throws -> [Int] {
    try expect(UInt8(ascii: "("))
    var values: [Int] = []
    while true {
      skipSpace()
      if peek() == UInt8(ascii: ")") {
        position += 1
        return values
      }
      var value = 0
      var digits = 0
      while let c = peek(), c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
        let (scaled, o1) = value.multipliedReportingOverflow(by: 10)
        let (sum, o2) = scaled.addingReportingOverflow(Int(c - UInt8(ascii: "0")))
        guard !o1, !o2 else { throw NPYError.malformedHeader(reason: "shape extent too large") }
        value = sum
        digits += 1
        position += 1
      }
      guard digits > 0 else { throw NPYError.malformedHeader(reason: "expected a shape extent at offset \(position)") }
      if peek() == UInt8(ascii: "L") { position += 1 }  // Python 2 long
      values.append(value)
      skipSpace()
      if peek() == UInt8(ascii: ",") {
        position += 1
      } else if peek() != UInt8(ascii: ")") {
        throw NPYError.malformedHeader(reason: "expected ',' or ')' in shape at offset \(position)")
      }
    }
  }

  private mutating func expectWord(_ word: String) throws {
    for byte in word.utf8 { try expect(byte) }
  }

  private mutating func expect(_ byte: UInt8) throws {
    guard peek() == byte else {
      throw NPYError.malformedHeader(reason: "expected '\(Character(Unicode.Scalar(byte)))' at offset \(position)")
    }
    position += 1
  }

  private func peek() -> UInt8? { position < text.count ? text[position] : nil }

  private mutating func skipSpace() {
    while let c = peek(), c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { position += 1 }
  }
}

/// IEEE half-precision bits of a float, rounding to nearest even (as
/// numpy's astype(float16) does), without relying on a Float16 type.
public enum Float16Bits {
  /// Whether a finite `value` becomes infinity in float16: its magnitude
  /// rounds past 65504, the largest finite half.
  public static func overflows(_ value: Float) -> Bool { overflowed(from(value), from: value) }

  /// Whether `half`, made from `value` by `from`, is an infinity that
  /// `value` was not.
  public static func overflowed(_ half: UInt16, from value: Float) -> Bool {
    value.isFinite && half & 0x7C00 == 0x7C00
  }

  /// Little-endian half bits of every value, at the vector units' speed
  /// (`from` is the plain rule this follows). Returns how many finite
  /// values became infinity.
  @discardableResult
  public static func convert(_ values: UnsafeBufferPointer<Float>, into bytes: UnsafeMutableRawBufferPointer) -> Int {
    precondition(bytes.count >= values.count * 2, "float16 output too small")
    guard let source = values.baseAddress, let target = bytes.baseAddress else { return 0 }
    let halves = target.bindMemory(to: UInt16.self, capacity: values.count)
    let overflows = atr_float16_from_float(halves, source, values.count)
    #if _endian(big)
    for i in 0..<values.count { halves[i] = halves[i].littleEndian }
    #endif
    return overflows
  }

  public static func from(_ value: Float) -> UInt16 {
    let bits = value.bitPattern
    let sign = UInt16((bits >> 16) & 0x8000)
    let exponent = Int((bits >> 23) & 0xFF)
    var mantissa = bits & 0x7F_FFFF
    if exponent == 0xFF { return sign | 0x7C00 | (mantissa != 0 ? 0x200 : 0) }  // inf, nan
    let e = exponent - 127 + 15
    if e >= 0x1F { return sign | 0x7C00 }  // overflow to infinity
    if e <= 0 {
      // Subnormal half (or zero): shift the full mantissa into place.
      if e < -10 { return sign }
      mantissa |= 0x80_0000
      let shift = UInt32(14 - e)
      var half = mantissa >> shift
      let rest = mantissa & ((1 << shift) - 1), halfway = UInt32(1) << (shift - 1)
      if rest > halfway || (rest == halfway && half & 1 == 1) { half += 1 }
      return sign | UInt16(half)
    }
    var half = UInt32(e) << 10 | (mantissa >> 13)
    let rest = mantissa & 0x1FFF
    if rest > 0x1000 || (rest == 0x1000 && half & 1 == 1) { half += 1 }  // may carry into the exponent: correct
    return sign | UInt16(half)
  }
}
