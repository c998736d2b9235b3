import AtrousNN
@testable import AtrousONNX
import Foundation
import Testing

/// Tensors stored as raw bytes (how exporters write weights): read into
/// the element type, at any byte offset, and refused without allocating
/// when their size disagrees with their shape.
@Suite struct ONNXRawDataTests {
  static func tensor(dims: [Int64], type: Int32, raw: [UInt8]) throws -> NDArray {
    var proto = Onnx_TensorProto()
    proto.name = "w"
    proto.dims = dims
    proto.dataType = type
    proto.rawData = Data(raw)
    return try ONNXModel.tensor(try proto.serializedData())
  }

  static func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

  @Test func floatsAndIntegersAreReadAsStored() throws {
    let floats: [Float] = [1.5, -2.25, 0, .infinity, -0.0, 3e-39]
    let f = try Self.tensor(dims: [2, 3], type: 1, raw: Self.bytes(floats))
    #expect(f.shape == [2, 3])
    #expect(f.floatValues().map(\.bitPattern) == floats.map(\.bitPattern))
    let integers: [Int64] = [-1, 1 << 40, 7]
    let i = try Self.tensor(dims: [3], type: 7, raw: Self.bytes(integers))
    #expect(i.int64Values() == integers)
    let halves: [Int32] = [-5, 9]
    #expect(try Self.tensor(dims: [2], type: 6, raw: Self.bytes(halves)).int64Values() == [-5, 9])
  }

  /// A shape far larger than the bytes (a damaged or hostile file) is an
  /// error, not an allocation of the shape's size.
  @Test(arguments: [(Int32(1), [Int64(1) << 40]), (Int32(7), [Int64(1) << 40]), (Int32(1), [3]), (Int32(7), [2])])
  func sizeMismatchesAreRefused(type: Int32, dims: [Int64]) throws {
    #expect(throws: ONNXError.self) { try Self.tensor(dims: dims, type: type, raw: [UInt8](repeating: 1, count: 20)) }
  }
}
