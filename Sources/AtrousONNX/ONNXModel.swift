import AtrousCore
import AtrousIO
import AtrousNN
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwiftProtobuf

/// Why an ONNX file could not become a graph.
public enum ONNXError: Error, Equatable, CustomStringConvertible {
  /// The bytes are not a valid ModelProto (truncated, corrupt, not ONNX).
  case malformed(reason: String)
  case unsupportedOpset(domain: String, version: Int)
  /// An initializer or Constant tensor that cannot be read.
  case unsupportedTensor(name: String, reason: String)

  public var description: String {
    switch self {
    case .malformed(let reason): "not a valid ONNX model: \(reason)"
    case .unsupportedOpset(let domain, let version):
      "operator set \(domain.isEmpty ? "ai.onnx" : domain) version \(version) is not supported (1 and later are)"
    case .unsupportedTensor(let name, let reason): "tensor '\(name)': \(reason)"
    }
  }
}

/// Reads ONNX models (protobuf ModelProto) into `Graph`s.
public enum ONNXModel {
  /// Reads and converts an ONNX file, its weights read on up to `threads`
  /// cores.
  /// - Throws: `FileError`, `ONNXError`.
  public static func load(_ path: String, threads: Int = Parallel.budget) throws -> Graph {
    let file = try FileIO.openWhole(path, what: "reading its weights")
    // The weights read from the file straight into their tensors, where
    // the scan can follow the file's data (see `TensorPayloads`).
    if let parts = try TensorPayloads.scan(file) {
      // The raw_data payloads, then the float_data ones.
      let payloads = Array(parts.raw) + Array(parts.floats)
      let read = try readAll(payloads.map(\.value), from: file, threads: threads)
      var values: [TensorPayloads.Slot: LeftOut] = [:]
      for (index, (slot, range)) in payloads.enumerated() {
        let bytes = RawBytes(read[index], count: range.count)
        if index < parts.raw.count { values[slot, default: LeftOut()].raw = bytes } else { values[slot, default: LeftOut()].floats = bytes }
      }
      return try decode(bytes: parts.stripped, values: values)
    }
    // Decoded from the bytes as read: a Data made of them would copy the
    // whole file once more.
    return try decode(bytes: FileIO.readAll(path))
  }

  /// The bytes of every range of `file`, each into a tensor of its own
  /// (its bytes from the first, the last float padded), read by `threads`
  /// cores in pieces of up to `pieceBytes`, whichever core is free taking
  /// the next: the kernel's copy from the page cache is most of a model's
  /// load, and one core copied at 4 to 5 GB/s (AMD EPYC family 25).
  /// - Throws: `FileError`, or `ONNXError.malformed` when the file ends
  ///   before a range.
  static func readAll(_ ranges: [Range<Int>], from file: ReadableFile, threads: Int, pieceBytes: Int = readPieceBytes) throws
    -> [Tensor]
  {
    var tensors = ranges.map { Tensor.uninitialized(shape: [($0.count + 3) / 4]) }
    var pieces: [(tensor: Int, range: Range<Int>)] = []  // byte ranges within each tensor's
    for (index, range) in ranges.enumerated() {
      for start in stride(from: 0, to: range.count, by: pieceBytes) {
        pieces.append((index, start..<min(range.count, start + pieceBytes)))
      }
    }
    // Each tensor's own storage, unshared (written without a copy), which
    // `tensors` keeps where it is until the reads are done.
    let targets = tensors.indices.map { index in tensors[index].withUnsafeMutableBufferPointer { UnsafeMutableRawPointer($0.baseAddress!) } }
    // Per piece, the error that stopped it: the file's (FileError), or its end.
    var failures = [Error?](repeating: nil, count: pieces.count)
    failures.withUnsafeMutableBufferPointer { failures in
      Parallel.dynamic(pieces.count, workers: threads) { _, index in
        let (tensor, piece) = pieces[index]
        do {
          let got = try file.read(into: UnsafeMutableRawBufferPointer(start: targets[tensor] + piece.lowerBound, count: piece.count),
                                  at: ranges[tensor].lowerBound + piece.lowerBound)
          if got != piece.count { failures[index] = ONNXError.malformed(reason: explain(.truncated)) }
        } catch {
          failures[index] = error
        }
      }
    }
    if let failure = failures.lazy.compactMap({ $0 }).first { throw failure }
    return tensors
  }

  /// Bytes a core reads at once in `readAll`.
  static let readPieceBytes = 1 << 20

  /// A tensor's values that the bytes decoded leave out: its raw_data, or
  /// its packed float_data's bytes.
  struct LeftOut {
    var raw: RawBytes?
    var floats: RawBytes?
  }

  /// A tensor's raw bytes, wherever they are: `copy` writes all `count`
  /// of them to memory it is given.
  struct RawBytes {
    var count: Int
    var copy: (UnsafeMutableRawPointer) -> Void
    /// The bytes already in a tensor of their own (`readAll`), which a
    /// float32 tensor of as many bytes takes as it is.
    var tensor: Tensor? = nil

    /// The bytes `readAll` read into `tensor`.
    init(_ tensor: Tensor, count: Int) {
      self.count = count
      self.tensor = tensor
      copy = { target in tensor.withUnsafeBytes { _ = memcpy(target, $0.baseAddress!, count) } }
    }

    /// The bytes of a decoded raw_data field.
    init(_ data: Data) {
      count = data.count
      copy = { target in data.withUnsafeBytes { if let from = $0.baseAddress { _ = memcpy(target, from, $0.count) } } }
    }
  }

  /// What a protobuf decoding error means for the file, in words.
  static func explain(_ error: BinaryDecodingError) -> String {
    switch error {
    case .truncated: "the file ends in the middle of a field (cut short?)"
    case .malformedProtobuf: "its bytes are not protobuf data (another kind of file, or corrupt)"
    case .invalidUTF8: "a text field is not valid UTF-8"
    case .messageDepthLimit: "messages are nested too deeply"
    default: "its protobuf data cannot be decoded (\(error))"
    }
  }

  /// Converts the bytes of an ONNX file.
  /// - Throws: `ONNXError`.
  public static func decode(_ data: Data) throws -> Graph {
    try decode(bytes: data)
  }

  /// - Parameter values: those of tensors that `bytes` leaves out, by slot.
  static func decode<Bytes: SwiftProtobufContiguousBytes>(bytes: Bytes, values: [TensorPayloads.Slot: LeftOut] = [:]) throws
    -> Graph
  {
    let model: Onnx_ModelProto
    do {
      model = try Onnx_ModelProto(serializedBytes: bytes)
    } catch let error as BinaryDecodingError {
      throw ONNXError.malformed(reason: Self.explain(error))
    } catch {
      throw ONNXError.malformed(reason: "\(error)")
    }
    guard model.hasGraph else { throw ONNXError.malformed(reason: "no graph") }
    var opset = 0
    for entry in model.opsetImport where entry.domain.isEmpty || entry.domain == "ai.onnx" {
      opset = Int(entry.version)
    }
    if model.opsetImport.isEmpty { opset = 1 }
    // Older opsets differ from 7 in attributes each op reads by opset.
    guard opset >= 1 else { throw ONNXError.unsupportedOpset(domain: "", version: opset) }
    return try convert(model.graph, opset: opset, values: values)
  }

  static func convert(_ proto: Onnx_GraphProto, opset: Int, values: [TensorPayloads.Slot: LeftOut] = [:]) throws -> Graph {
    var initializers: [String: NDArray] = [:]
    for (index, tensor) in proto.initializer.enumerated() {
      initializers[tensor.name] = try array(tensor, leftOut: values[.initializer(index)])
    }
    var nodes: [Node] = []
    // Unnamed nodes are named after their op and position, clear of the names given.
    let given = Set(proto.node.map(\.name))
    for (index, node) in proto.node.enumerated() {
      var name = node.name
      if name.isEmpty {
        name = "\(node.opType)_\(index)"
        while given.contains(name) { name += "_" }
      }
      var attributes: [String: Attribute] = [:]
      for (position, attribute) in node.attribute.enumerated() {
        if let value = try self.attribute(attribute, node: name, leftOut: values[.attribute(node: index, attribute: position)]) {
          attributes[attribute.name] = value
        }
      }
      // Constants become initializers: they are weights in all but name.
      if node.opType == "Constant", node.domain.isEmpty, node.output.count == 1,
        let constant = constantValue(attributes)
      {
        initializers[node.output[0]] = constant
        continue
      }
      nodes.append(Node(name: name, opType: node.domain.isEmpty || node.domain == "ai.onnx" ? node.opType : "\(node.domain).\(node.opType)",
                        inputs: node.input, outputs: node.output, attributes: attributes))
    }
    let inputs = try proto.input.map { info -> Graph.Input in
      let code = Int(info.type.tensorType.elemType)
      guard code == 0 || DType(rawValue: code) != nil else {
        throw ONNXError.unsupportedTensor(name: info.name, reason: "element type \(DType.name(code)) is not supported")
      }
      return Graph.Input(name: info.name, shape: info.type.tensorType.shape.dim.map { dimension -> Int? in
        if case .dimValue(let v)? = dimension.value, v > 0 { return Int(v) }
        return nil
      }, dtype: DType(rawValue: code))
    }
    return Graph(nodes: nodes, initializers: initializers, inputs: inputs, outputs: proto.output.map(\.name), opset: opset)
  }

  static func constantValue(_ attributes: [String: Attribute]) -> NDArray? {
    switch (attributes["value"], attributes["value_float"], attributes["value_floats"], attributes["value_int"], attributes["value_ints"]) {
    case (.tensor(let t)?, _, _, _, _): t
    case (_, .float(let v)?, _, _, _): NDArray(shape: [], floats: [v])
    case (_, _, .floats(let v)?, _, _): NDArray(shape: [v.count], floats: v)
    case (_, _, _, .int(let v)?, _): NDArray(shape: [], int64s: [Int64(v)])
    case (_, _, _, _, .ints(let v)?): NDArray(shape: [v.count], int64s: v.map(Int64.init))
    default: nil
    }
  }

  /// - Parameter leftOut: its tensor's values, where the message leaves
  ///   them out.
  static func attribute(_ a: Onnx_AttributeProto, node: String, leftOut: LeftOut? = nil) throws -> Attribute? {
    switch a.type {
    case .float: return .float(a.f)
    case .int: return .int(Int(a.i))
    case .string: return .string(String(decoding: a.s, as: UTF8.self))
    case .floats: return .floats(a.floats)
    case .ints: return .ints(a.ints.map(Int.init))
    case .strings: return .strings(a.strings.map { String(decoding: $0, as: UTF8.self) })
    case .tensor: return .tensor(try array(a.t, leftOut: leftOut))
    default:
      // Untyped attributes from old exporters: infer from the field set.
      if a.hasF { return .float(a.f) }
      if a.hasI { return .int(Int(a.i)) }
      if a.hasS { return .string(String(decoding: a.s, as: UTF8.self)) }
      if !a.ints.isEmpty { return .ints(a.ints.map(Int.init)) }
      if !a.floats.isEmpty { return .floats(a.floats) }
      if a.hasT { return .tensor(try array(a.t, leftOut: leftOut)) }
      return nil  // graphs and sparse tensors: the op using them is unsupported anyway
    }
  }

  /// A TensorProto as an array: floating types become Float32, integer and
  /// boolean types Int64.
  /// - Parameter leftOut: its values, where the message leaves them out.
  static func array(_ t: Onnx_TensorProto, leftOut: LeftOut? = nil) throws -> NDArray {
    let name = t.name
    guard t.dataLocation != .external else {
      throw ONNXError.unsupportedTensor(name: name, reason: "external data files are not supported")
    }
    let shape = t.dims.map(Int.init)
    guard shape.allSatisfy({ $0 >= 0 }) else { throw ONNXError.unsupportedTensor(name: name, reason: "negative dimension in \(shape)") }
    var count = 1
    for dim in shape {
      let (product, overflow) = count.multipliedReportingOverflow(by: dim)
      guard !overflow else { throw ONNXError.unsupportedTensor(name: name, reason: "dims \(shape) multiply past \(Int.max)") }
      count = product
    }
    let raw = leftOut?.raw ?? RawBytes(t.rawData)
    /// Checks that the raw bytes hold `count` elements of `size` bytes,
    /// before anything that large is allocated.
    func checkRaw(elementSize size: Int) throws {
      guard raw.count % size == 0, raw.count / size == count else {
        throw ONNXError.unsupportedTensor(name: name, reason: "\(raw.count) raw bytes for \(count) elements of \(shape)")
      }
    }
    /// The raw bytes copied to `target`: copied, not bound in place,
    /// because they lie wherever the protobuf data put them, not
    /// necessarily aligned for the element type.
    func copyRaw(to target: UnsafeMutableRawPointer?) {
      if let target, raw.count > 0 { raw.copy(target) }
    }
    func fromRaw<T>(_: T.Type) throws -> [T] {
      try checkRaw(elementSize: MemoryLayout<T>.size)
      return [T](unsafeUninitializedCapacity: count) { values, initialized in
        copyRaw(to: values.baseAddress)
        initialized = count
      }
    }
    func checked<T>(_ values: [T]) throws -> [T] {
      guard values.count == count else {
        throw ONNXError.unsupportedTensor(name: name, reason: "\(values.count) values for shape \(shape)")
      }
      return values
    }
    guard let dtype = DType(rawValue: Int(t.dataType)) else {
      throw ONNXError.unsupportedTensor(name: name, reason: "element type \(DType.name(Int(t.dataType))) is not supported")
    }
    switch dtype {
    case .float32:
      // The weights of a model: one copy, from the file (or its bytes) into
      // the tensor; float_data left out holds the same float32 bytes.
      var source = raw
      if raw.count == 0 {
        guard let floats = leftOut?.floats else { return NDArray(shape: shape, floats: try checked(t.floatData)) }
        guard floats.count % MemoryLayout<Float>.size == 0, floats.count / MemoryLayout<Float>.size == count else {
          throw ONNXError.unsupportedTensor(name: name, reason: "\(floats.count / MemoryLayout<Float>.size) values for shape \(shape)")
        }
        source = floats
      } else {
        try checkRaw(elementSize: MemoryLayout<Float>.size)
      }
      if let read = source.tensor, read.count == count { return NDArray(shape: shape, floats: read.reshaped(shape)) }
      var values = Tensor.uninitialized(shape: shape)  // (shape), C order
      values.withUnsafeMutableBufferPointer { if let target = $0.baseAddress, source.count > 0 { source.copy(target) } }
      return NDArray(shape: shape, floats: values)
    case .float64:
      return NDArray(shape: shape, floats: try (raw.count == 0 ? checked(t.doubleData) : fromRaw(Double.self)).map { Float($0) },
                     dtype: .float64)
    case .float16:
      let bits = try raw.count == 0 ? checked(t.int32Data).map { UInt16(truncatingIfNeeded: $0) } : fromRaw(UInt16.self)
      return NDArray(shape: shape, floats: bits.map { Float(Float16(bitPattern: $0)) }, dtype: .float16)
    case .int64:
      return NDArray(shape: shape, int64s: try raw.count == 0 ? checked(t.int64Data) : fromRaw(Int64.self))
    case .uint64:
      let values = try raw.count == 0 ? checked(t.uint64Data) : fromRaw(UInt64.self)
      return NDArray(shape: shape, int64s: values.map { Int64(bitPattern: $0) }, dtype: .uint64)
    case .uint32:
      let values = try raw.count == 0 ? checked(t.uint64Data).map { Int64($0) } : fromRaw(UInt32.self).map { Int64($0) }
      return NDArray(shape: shape, int64s: values, dtype: .uint32)
    case .int32, .int8, .int16, .uint8, .uint16, .bool:
      // Small types without raw data are stored one per int32.
      if raw.count == 0 { return NDArray(shape: shape, int64s: try checked(t.int32Data).map { Int64($0) }, dtype: dtype) }
      let values: [Int64]
      switch dtype {
      case .int32: values = try fromRaw(Int32.self).map { Int64($0) }
      case .int8: values = try fromRaw(Int8.self).map { Int64($0) }
      case .int16: values = try fromRaw(Int16.self).map { Int64($0) }
      case .uint16: values = try fromRaw(UInt16.self).map { Int64($0) }
      default: values = try fromRaw(UInt8.self).map { Int64($0) }
      }
      return NDArray(shape: shape, int64s: values, dtype: dtype)
    }
  }

  /// Reads a serialized TensorProto (the `.pb` files of ONNX's tests).
  public static func tensor(_ data: Data) throws -> NDArray {
    do {
      return try array(try Onnx_TensorProto(serializedBytes: data))
    } catch let error as ONNXError {
      throw error
    } catch let error as BinaryDecodingError {
      throw ONNXError.malformed(reason: Self.explain(error))
    } catch {
      throw ONNXError.malformed(reason: "\(error)")
    }
  }
}
