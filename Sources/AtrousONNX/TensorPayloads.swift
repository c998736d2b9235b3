import AtrousIO

/// An ONNX file read in two parts, so that each weight is copied once,
/// from the file straight into its tensor: the protobuf data without the
/// tensors' values (`stripped`: the graph's structure, a few kilobytes),
/// which the protobuf decoder reads, and where each tensor's values lie in
/// the file (`raw`, `floats`), which are read into the tensors. Reading the
/// file whole and decoding it made three copies of every weight (the
/// file's bytes, the decoder's, the tensor's), each into memory fresh from
/// the kernel: 60 to 106 ms of a fresh process for ResNet-18's 47 MB, and
/// three times the weights' size at the peak.
///
/// The tensors are the graph's initializers (ModelProto.graph (7) ->
/// GraphProto.initializer (5)) and its nodes' tensor attributes (GraphProto
/// .node (1) -> NodeProto.attribute (5) -> AttributeProto.t (5)), where
/// exporters that write Constant nodes keep the weights. Of a tensor, its
/// raw_data (9) and its packed float_data (4: the same little-endian
/// float32s) are taken out; every other field, at every level, is copied
/// as it is. A message the scan looks into is written with its length as
/// a varint as wide as the original's (padded with continuation bytes,
/// which protobuf allows), so that it is written in place, once. Data the
/// scan cannot follow (the deprecated group wire types, a length past the
/// end of its message) gives nil: the file is then decoded whole, which
/// says what is wrong with it.
struct TensorPayloads {
  /// Which tensor of the graph: an initializer by position, or the tensor
  /// attribute at `attribute` of the node at `node` (positions in the
  /// decoded graph's lists).
  enum Slot: Hashable {
    case initializer(Int)
    case attribute(node: Int, attribute: Int)
  }

  /// The ModelProto's bytes without the values below.
  var stripped: [UInt8]
  /// Byte ranges in the file of tensors' raw_data.
  var raw: [Slot: Range<Int>]
  /// Byte ranges in the file of tensors' packed float_data: float32
  /// values, for a float32 tensor (the only type that keeps them there).
  var floats: [Slot: Range<Int>]

  /// The file's two parts, or nil where the scan cannot follow its data.
  /// - Throws: `FileError.cannotRead`.
  static func scan(_ file: ReadableFile) throws -> TensorPayloads? {
    var scanner = Scanner(file: file, end: file.size)
    var stripped: [UInt8] = []
    guard try scanner.message(0..<scanner.end, level: .model, into: &stripped) else { return nil }
    return TensorPayloads(stripped: stripped, raw: scanner.raw, floats: scanner.floats)
  }

  /// The messages on the way to the values.
  enum Level { case model, graph, node, attribute, tensor }

  private struct Scanner {
    let file: ReadableFile
    let end: Int
    var raw: [Slot: Range<Int>] = [:], floats: [Slot: Range<Int>] = [:]
    /// Initializers and nodes met so far, and attributes of the node being
    /// scanned; the tensor being scanned.
    var initializers = 0, nodes = 0, attributes = 0
    var slot = Slot.initializer(0)
    /// Bytes of the file from `windowStart`: keys and lengths are read
    /// from here, a byte at a time.
    var window: [UInt8] = [], windowStart = 0
    static let windowBytes = 1 << 16

    init(file: ReadableFile, end: Int) {
      (self.file, self.end) = (file, end)
    }

    /// The byte at `offset` (below `end`).
    mutating func byte(at offset: Int) throws -> UInt8 {
      if offset < windowStart || offset >= windowStart + window.count { try fill(from: offset) }
      return window[offset - windowStart]
    }

    /// Moves the window to start at `offset` (below `end`).
    mutating func fill(from offset: Int) throws {
      windowStart = offset
      window = [UInt8](repeating: 0, count: min(Self.windowBytes, end - offset))
      let got = try window.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
      window.removeLast(window.count - got)
      guard got > 0 else { throw FileError.cannotRead(path: file.path, reason: "the file shrank while it was read") }
    }

    /// The varint at `offset`, which moves past it; nil when it runs past
    /// `limit` or is longer than ten bytes.
    mutating func varint(_ offset: inout Int, limit: Int) throws -> UInt64? {
      var value: UInt64 = 0
      for shift in stride(from: 0, to: 70, by: 7) {
        guard offset < limit else { return nil }
        let b = try byte(at: offset)
        offset += 1
        value |= UInt64(b & 0x7f) << UInt64(shift)
        if b < 0x80 { return value }
      }
      return nil
    }

    /// Appends the file's bytes `range` to `out`: from the window where it
    /// holds them (or will, for a short range), else read straight in.
    mutating func copy(_ range: Range<Int>, into out: inout [UInt8]) throws {
      guard !range.isEmpty else { return }
      if range.count <= Self.windowBytes / 4 {
        if range.lowerBound < windowStart || range.upperBound > windowStart + window.count { try fill(from: range.lowerBound) }
        if range.upperBound <= windowStart + window.count {
          out += window[(range.lowerBound - windowStart)..<(range.upperBound - windowStart)]
          return
        }
      }
      let start = out.count
      out.append(contentsOf: repeatElement(0, count: range.count))
      let got = try out.withUnsafeMutableBytes {
        try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[start...]), at: range.lowerBound)
      }
      guard got == range.count else { throw FileError.cannotRead(path: file.path, reason: "the file shrank while it was read") }
    }

    /// The level of the message in field `field` of a message at `level`,
    /// where the scan looks into it (and which tensor it is), else nil.
    mutating func inner(_ field: UInt64, of level: Level) -> Level? {
      switch (level, field) {
      case (.model, 7): return .graph
      case (.graph, 5):
        (slot, initializers) = (.initializer(initializers), initializers + 1)
        return .tensor
      case (.graph, 1):
        (nodes, attributes) = (nodes + 1, 0)
        return .node
      case (.node, 5):
        attributes += 1
        return .attribute
      case (.attribute, 5):
        slot = .attribute(node: nodes - 1, attribute: attributes - 1)
        return .tensor
      default: return nil
      }
    }

    /// Scans the message in `range` at `level`, appending it to `out`
    /// without the values; false where the data cannot be followed.
    mutating func message(_ range: Range<Int>, level: Level, into out: inout [UInt8]) throws -> Bool {
      var p = range.lowerBound
      while p < range.upperBound {
        let keyStart = p
        guard let key = try varint(&p, limit: range.upperBound) else { return false }
        let (field, wire) = (key >> 3, key & 7)
        switch wire {
        case 0:
          guard try varint(&p, limit: range.upperBound) != nil else { return false }
        case 1, 5:
          p += wire == 1 ? 8 : 4
          guard p <= range.upperBound else { return false }
        case 2:
          let lengthStart = p
          guard let length = try varint(&p, limit: range.upperBound), length <= UInt64(range.upperBound - p) else {
            return false
          }
          let width = p - lengthStart
          let payload = p..<(p + Int(length))
          p = payload.upperBound
          if level == .tensor && (field == 9 || field == 4) {
            if field == 9 { raw[slot] = payload } else { floats[slot] = payload }
            continue
          }
          if let next = inner(field, of: level) {
            // The key, room for the length, the message; then its length.
            Self.append(varint: key, to: &out)
            let lengthAt = out.count
            out.append(contentsOf: repeatElement(0, count: width))
            guard try message(payload, level: next, into: &out) else { return false }
            Self.write(varint: UInt64(out.count - lengthAt - width), width: width, into: &out, at: lengthAt)
            continue
          }
        default:
          return false
        }
        try copy(keyStart..<p, into: &out)
      }
      return true
    }

    /// `value` as a varint of exactly `width` bytes (at least its own),
    /// the first ones with the continuation bit and no value bits to spare.
    static func write(varint value: UInt64, width: Int, into out: inout [UInt8], at offset: Int) {
      var v = value
      for i in 0..<width {
        out[offset + i] = UInt8(v & 0x7f) | (i < width - 1 ? 0x80 : 0)
        v >>= 7
      }
    }

    static func append(varint value: UInt64, to out: inout [UInt8]) {
      var v = value
      while v >= 0x80 {
        out.append(UInt8(v & 0x7f) | 0x80)
        v >>= 7
      }
      out.append(UInt8(v))
    }
  }
}
