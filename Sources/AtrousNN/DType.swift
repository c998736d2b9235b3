/// The element type of a network value, numbered as ONNX's
/// `TensorProto.DataType` numbers them.
///
/// Values are computed in two representations: floating types as Float32
/// (float16 values are rounded to float16 where they enter and leave the
/// graph, and keep float32 precision between its ops, as in ONNX Runtime;
/// float64 computes in Float32, within ONNX's test tolerances of rtol 1e-3),
/// integer and boolean types as Int64, wrapped to their own width where a
/// value leaves an op (unsigned 64-bit values keep their bit pattern).
public enum DType: Int, Sendable, CaseIterable, CustomStringConvertible {
  case float32 = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7, bool = 9
  case float16 = 10, float64 = 11, uint32 = 12, uint64 = 13

  public var isFloatingPoint: Bool { self == .float32 || self == .float16 || self == .float64 }
  public var isSigned: Bool { isFloatingPoint || self == .int8 || self == .int16 || self == .int32 || self == .int64 }

  /// ONNX's name for the type (`tensor(float)` shows as `float`).
  public var description: String {
    switch self {
    case .float32: "float"
    case .float16: "float16"
    case .float64: "double"
    case .int8: "int8"
    case .int16: "int16"
    case .int32: "int32"
    case .int64: "int64"
    case .uint8: "uint8"
    case .uint16: "uint16"
    case .uint32: "uint32"
    case .uint64: "uint64"
    case .bool: "bool"
    }
  }

  /// ONNX's name of an element type number, for messages about the types
  /// this enum does not hold (bfloat16, float8, 4-bit, string, complex).
  public static func name(_ code: Int) -> String {
    if let type = DType(rawValue: code) { return type.description }
    let names = [0: "undefined", 8: "string", 14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8e4m3fn",
                 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4",
                 23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2"]
    return names[code] ?? "number \(code)"
  }

  /// `value` as this integer type holds it: truncated to its width (C's
  /// conversion), bool as 0 or 1.
  @inline(__always)
  public func wrap(_ value: Int64) -> Int64 {
    switch self {
    case .int8: Int64(Int8(truncatingIfNeeded: value))
    case .int16: Int64(Int16(truncatingIfNeeded: value))
    case .int32: Int64(Int32(truncatingIfNeeded: value))
    case .uint8: Int64(UInt8(truncatingIfNeeded: value))
    case .uint16: Int64(UInt16(truncatingIfNeeded: value))
    case .uint32: Int64(UInt32(truncatingIfNeeded: value))
    case .bool: value != 0 ? 1 : 0
    default: value
    }
  }

  /// A float converted to this integer type as ONNX's Cast converts it:
  /// truncated toward zero, then wrapped; NaN and infinities become the
  /// type's zero (bool: nonzero, NaN included, is true).
  @inline(__always)
  public func integer(_ value: Float) -> Int64 {
    if self == .bool { return value != 0 ? 1 : 0 }
    guard value.isFinite else { return 0 }
    let t = value.rounded(.towardZero)
    if self == .uint64 && t >= 9.223372e18 { return Int64(bitPattern: UInt64(Swift.min(t, 1.8446743e19))) }
    guard Swift.abs(t) < 9.223372e18 else { return t < 0 ? Int64.min : Int64.max }
    return wrap(Int64(t))
  }

  /// The smallest and largest values of an integer type, as stored
  /// (uint64's largest is the bit pattern of -1).
  public var integerRange: (min: Int64, max: Int64) {
    switch self {
    case .int8: (-128, 127)
    case .int16: (-32768, 32767)
    case .int32: (Int64(Int32.min), Int64(Int32.max))
    case .uint8: (0, 255)
    case .uint16: (0, 65535)
    case .uint32: (0, Int64(UInt32.max))
    case .uint64: (0, -1)
    case .bool: (0, 1)
    default: (.min, .max)
    }
  }

  /// An integer of this type as a float (uint64 read from its bit pattern).
  @inline(__always)
  public func float(_ value: Int64) -> Float {
    self == .uint64 ? Float(UInt64(bitPattern: value)) : Float(value)
  }
}
