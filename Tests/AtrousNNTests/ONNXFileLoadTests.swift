import AtrousCore
import AtrousIO
import AtrousNN
@testable import AtrousONNX
import AtrousTestSupport
import Foundation
import Testing

/// `ONNXModel.load` reads the initializers' raw bytes from the file
/// straight into their tensors (`TensorPayloads`): the graph it makes
/// equals the one decoded from the whole file's bytes, for real models
/// and for files with every kind of field around the payloads; files the
/// scan cannot follow are decoded whole, with the same errors.
@Suite struct ONNXFileLoadTests {
  /// Every node (name, op, inputs, outputs, attributes) and initializer
  /// (shape, type, values to the bit) of a graph, as text.
  static func summary(_ graph: Graph) -> String {
    func describe(_ a: NDArray) -> String {
      "\(a.shape) \(a.dtype) " + (a.isFloat ? "\(a.floatValues().map(\.bitPattern))" : "\(a.int64Values())")
    }
    func describe(_ attribute: Attribute) -> String {
      if case .tensor(let t) = attribute { return describe(t) }
      return "\(attribute)"
    }
    let nodes = graph.nodes.map { node in
      "\(node.name) \(node.opType) \(node.inputs) \(node.outputs) "
        + node.attributes.keys.sorted().map { "\($0)=\(describe(node.attributes[$0]!))" }.joined(separator: " ")
    }
    let initializers = graph.initializers.keys.sorted().map { "\($0): \(describe(graph.initializers[$0]!))" }
    let inputs = graph.inputs.map { "\($0.name) \($0.shape) \(String(describing: $0.dtype))" }
    return (nodes + initializers + inputs + graph.outputs + ["opset \(graph.opset)"]).joined(separator: "\n")
  }

  /// The graph from the whole file's bytes, or the error's text.
  static func decoded(_ bytes: [UInt8]) -> String {
    do { return summary(try ONNXModel.decode(bytes: bytes)) } catch { return "error: \(error)" }
  }

  static func loaded(_ path: String) -> String {
    do { return summary(try ONNXModel.load(path)) } catch { return "error: \(error)" }
  }

  /// The models the library ships, the corpus's small-width models and
  /// the hypercolumn fixture: the scan takes every initializer's values
  /// out (so the equality below is the scan's, not the whole-file
  /// fallback's).
  static var models: [String] {
    let corpus = Fixtures.path("model-corpus")
    let names = ((try? FileIO.listFolder(corpus)) ?? []).filter { !$0.hasSuffix(".json") }.sorted()
    return [Fixtures.model("mnist-8"), Fixtures.model("ppocrv4-det"), Fixtures.path("hypercolumns/net.onnx")]
      + names.map { "\(corpus)/\($0)/model.onnx" }
  }

  @Test(arguments: models)
  func loadingEqualsDecodingTheWholeFile(path: String) throws {
    let bytes = try FileIO.readAll(path)
    let proto = try Onnx_ModelProto(serializedBytes: bytes)
    // The tensors with values: initializers, and nodes' tensor attributes.
    var tensors = proto.graph.initializer.enumerated().map { (TensorPayloads.Slot.initializer($0.offset), $0.element) }
    for (n, node) in proto.graph.node.enumerated() {
      for (a, attribute) in node.attribute.enumerated() where attribute.hasT {
        tensors.append((.attribute(node: n, attribute: a), attribute.t))
      }
    }
    let raw = Set(tensors.filter { $0.1.hasRawData }.map(\.0)), listed = Set(tensors.filter { !$0.1.floatData.isEmpty }.map(\.0))
    let parts = try #require(try TensorPayloads.scan(ReadableFile(path: path)))
    #expect(Set(parts.raw.keys) == raw, "\(path)")
    #expect(Set(parts.floats.keys) == listed, "\(path)")
    #expect(!raw.union(listed).isEmpty, "\(path): no weights to read")
    let values = (Array(parts.raw.values) + Array(parts.floats.values)).reduce(0) { $0 + $1.count }
    #expect(parts.stripped.count + values <= bytes.count)
    let whole = Self.decoded(bytes)
    #expect(!whole.hasPrefix("error"), "\(path): \(whole.prefix(200))")
    #expect(Self.loaded(path) == whole, "\(path)")
  }

  /// A tensor of `values` as raw bytes, with a doc string after its
  /// payload (field 12 follows raw_data's 9 in the serialized order).
  static func rawTensor(_ name: String, _ values: [Float], dims: [Int64]) -> Onnx_TensorProto {
    var t = Onnx_TensorProto()
    t.name = name
    t.dims = dims
    t.dataType = 1
    t.rawData = values.withUnsafeBytes { Data($0) }
    t.docString = "after the payload"
    return t
  }

  /// A model with each kind of field the scan meets: raw float and int64
  /// initializers, one of float_data, an empty one, a Constant node whose
  /// tensor (its second attribute) holds raw bytes, a sparse
  /// initializer, fields the schema does not know at each level; and the
  /// graph given in two parts, which the decoder merges (the second part's
  /// initializers after the first's).
  static func handMade() throws -> [UInt8] {
    var model = Onnx_ModelProto()
    model.irVersion = 8
    var opset = Onnx_OperatorSetIdProto()
    opset.version = 17
    model.opsetImport = [opset]
    var graph = Onnx_GraphProto()
    graph.name = "hand-made"
    var weights = rawTensor("w", (0..<24).map { Float($0) * 0.25 - 3 }, dims: [2, 3, 2, 2])
    weights.docString = ""
    var integers = Onnx_TensorProto()
    integers.name = "shape"
    integers.dims = [2]
    integers.dataType = 7
    integers.rawData = [Int64(-1), 6].withUnsafeBytes { Data($0) }
    var listed = Onnx_TensorProto()
    listed.name = "listed"
    listed.dims = [3]
    listed.dataType = 1
    listed.floatData = [1, 2, 3]
    var empty = rawTensor("empty", [], dims: [0])
    empty.rawData = Data()
    graph.initializer = [weights, integers, listed, empty]
    var sparse = Onnx_SparseTensorProto()
    sparse.values = rawTensor("sparse", [5], dims: [1])
    graph.sparseInitializer = [sparse]
    var constant = Onnx_NodeProto()
    constant.opType = "Constant"
    constant.output = ["c"]
    var value = Onnx_AttributeProto()
    value.name = "value"
    value.type = .tensor
    value.t = rawTensor("", [7, 8], dims: [2])
    // An attribute before the tensor: the tensor is the node's second.
    var note = Onnx_AttributeProto()
    note.name = "note"
    note.type = .int
    note.i = 3
    constant.attribute = [note, value]
    var conv = Onnx_NodeProto()
    conv.opType = "Conv"
    conv.name = "conv"
    conv.input = ["x", "w"]
    conv.output = ["y"]
    var pads = Onnx_AttributeProto()
    pads.name = "pads"
    pads.type = .ints
    pads.ints = [1, 1, 1, 1]
    conv.attribute = [pads]
    graph.node = [constant, conv]
    var input = Onnx_ValueInfoProto()
    input.name = "x"
    var type = Onnx_TypeProto.Tensor()
    type.elemType = 1
    input.type.tensorType = type
    graph.input = [input]
    var output = Onnx_ValueInfoProto()
    output.name = "y"
    graph.output = [output]
    // A varint field no schema names, in the model, the graph and a tensor.
    let unknown: [UInt8] = [0xa0, 0x06, 0x2a]  // field 100, wire type 0, value 42
    // (Decoding keeps a field it does not know; serializing writes it back.)
    let tensorBytes: [UInt8] = try graph.initializer[0].serializedBytes()
    graph.initializer[0] = try Onnx_TensorProto(serializedBytes: tensorBytes + unknown)
    let graphBytes: [UInt8] = try graph.serializedBytes()
    model.graph = try Onnx_GraphProto(serializedBytes: graphBytes + unknown)
    var second = Onnx_ModelProto()
    var more = Onnx_GraphProto()
    more.initializer = [rawTensor("late", [0.5, -0.5], dims: [2])]
    second.graph = more
    let first: [UInt8] = try model.serializedBytes(), rest: [UInt8] = try second.serializedBytes()
    return first + unknown + rest
  }

  @Test func fieldsAroundThePayloadsAreKept() throws {
    let bytes = try Self.handMade()
    let folder = Fixtures.scratchFolder()
    defer { _ = Fixtures.shell("rm -rf '\(folder)'") }
    let path = folder + "/hand.onnx"
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let parts = try #require(try TensorPayloads.scan(ReadableFile(path: path)))
    // w, shape, empty (raw_data set, of no bytes), late (position 4, after
    // the first part's four) and the Constant's tensor have raw bytes.
    #expect(Set(parts.raw.keys) == [.initializer(0), .initializer(1), .initializer(3), .initializer(4),
                                    .attribute(node: 0, attribute: 1)])
    #expect(parts.raw[.initializer(3)]?.count == 0 && parts.raw[.initializer(4)]?.count == 8)
    // listed's packed float_data is read like raw bytes.
    #expect(Set(parts.floats.keys) == [.initializer(2)] && parts.floats[.initializer(2)]?.count == 12)
    let whole = Self.decoded(bytes)
    #expect(whole.contains("late") && whole.contains("listed") && whole.contains("c: [2]"), "\(whole)")
    #expect(Self.loaded(path) == whole)
  }

  /// `readAll` reads each range into a tensor of its own, to the byte,
  /// whatever the size of its pieces (a byte, a few, more than a range)
  /// and however many threads share them; a range past the file's end
  /// fails.
  @Test func rangesReadInPiecesAreTheFilesBytes() throws {
    let path = Fixtures.model("mnist-8")
    let bytes = try FileIO.readAll(path)
    let ranges = [0..<0, 0..<1, 3..<1000, 17..<4099, 5..<9, (bytes.count - 5)..<bytes.count, 0..<bytes.count]
    for piece in [1, 7, 1000, 1 << 20] {
      for threads in [1, 2, 3] {
        let tensors = try ONNXModel.readAll(ranges, from: ReadableFile(path: path), threads: threads, pieceBytes: piece)
        for (range, tensor) in zip(ranges, tensors) {
          let read = tensor.withUnsafeBytes { Array($0.prefix(range.count)) }
          #expect(tensor.count == (range.count + 3) / 4 && read == Array(bytes[range]), "\(range) pieces of \(piece), \(threads) threads")
        }
      }
    }
    #expect(throws: ONNXError.self) {
      try ONNXModel.readAll([0..<4, (bytes.count - 4)..<(bytes.count + 4)], from: ReadableFile(path: path), threads: 2, pieceBytes: 3)
    }
  }

  /// Cut short anywhere (in a payload, in a length, in a key, in a
  /// fixed-width field), given a group field, or not protobuf data at all:
  /// the same graph or error as decoding the bytes whole.
  @Test func filesTheScanCannotFollowAreDecodedWhole() throws {
    let bytes = try FileIO.readAll(Fixtures.model("mnist-8"))
    let folder = Fixtures.scratchFolder()
    defer { _ = Fixtures.shell("rm -rf '\(folder)'") }
    let group: [UInt8] = [0xa3, 0x06, 0x08, 0x01, 0xa4, 0x06]  // field 100: start group, a varint, end group
    let cuts = [1, 2, 7, 40, bytes.count / 3, bytes.count / 2, bytes.count - 100, bytes.count - 1]
    // A fixed-width field last (fields 101 and 102, 4 and 8 bytes), cut inside.
    let fixed = try Self.handMade() + [0xad, 0x06, 1, 2, 3, 4, 0xb1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]
    let fixedCuts = [1, 3, 7, 10, 12].map { Array(fixed.dropLast($0)) }
    let variants = cuts.map { Array(bytes.prefix($0)) } + fixedCuts + [fixed, group + bytes, bytes + group, [0xff, 0xff, 0xff], []]
    for (i, variant) in variants.enumerated() {
      let path = folder + "/m\(i).onnx"
      try Data(variant).write(to: URL(fileURLWithPath: path))
      #expect(Self.loaded(path) == Self.decoded(variant), "variant \(i): \(variant.count) bytes")
    }
  }

  /// Damaged files, as a disk or a download damages them: bytes changed,
  /// a run of bytes removed or repeated, at seeded places in the hand-made
  /// model and MNIST. Each loads to the same graph or error as its bytes
  /// decoded whole, and none crashes.
  @Test func damagedFilesLoadAsTheyDecode() throws {
    let folder = Fixtures.scratchFolder()
    defer { _ = Fixtures.shell("rm -rf '\(folder)'") }
    var random = SeededRandom(seed: 15)
    for original in [try Self.handMade(), try FileIO.readAll(Fixtures.model("mnist-8"))] {
      for i in 0..<60 {
        var bytes = original
        let at = Int.random(in: 0..<bytes.count, using: &random)
        switch i % 3 {
        case 0:
          for k in at..<min(bytes.count, at + 1 + i % 4) { bytes[k] = UInt8.random(in: 0...255, using: &random) }
        case 1: bytes.removeSubrange(at..<min(bytes.count, at + 1 + i % 7))
        default: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + 1 + i % 5)], at: at)
        }
        let path = folder + "/d\(i).onnx"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(Self.loaded(path) == Self.decoded(bytes), "damage \(i) at \(at)")
      }
    }
  }

  /// Every element type a model stores as raw bytes is read from the file
  /// as the decoder reads it: float16, float64, the integers, bool.
  @Test func everyRawElementTypeLoadsAsItDecodes() throws {
    func tensor<T>(_ name: String, _ type: Int32, _ values: [T]) -> Onnx_TensorProto {
      var t = Onnx_TensorProto()
      t.name = name
      t.dims = [Int64(values.count)]
      t.dataType = type
      t.rawData = values.withUnsafeBytes { Data($0) }
      return t
    }
    var graph = Onnx_GraphProto()
    graph.initializer = [
      tensor("half", 10, [Float16(1.5), -2, 65504].map(\.bitPattern)), tensor("double", 11, [1e-3, -7.25, 1e30]),
      tensor("int32", 6, [Int32.min, 0, 7]), tensor("int8", 3, [Int8(-128), 5]), tensor("int16", 5, [Int16(-300), 9]),
      tensor("uint8", 2, [UInt8(255), 0]), tensor("uint16", 4, [UInt16(65535)]), tensor("uint32", 12, [UInt32.max]),
      tensor("uint64", 13, [UInt64(1) << 63]), tensor("bool", 9, [UInt8(1), 0, 1]),
    ]
    var model = Onnx_ModelProto()
    model.graph = graph
    let bytes: [UInt8] = try model.serializedBytes()
    let folder = Fixtures.scratchFolder()
    defer { _ = Fixtures.shell("rm -rf '\(folder)'") }
    let path = folder + "/types.onnx"
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let parts = try #require(try TensorPayloads.scan(ReadableFile(path: path)))
    #expect(parts.raw.count == graph.initializer.count)
    let whole = Self.decoded(bytes)
    #expect(!whole.hasPrefix("error"), "\(whole)")
    #expect(Self.loaded(path) == whole)
  }
}
