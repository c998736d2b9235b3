import AtrousCore
import _CImageCodecs

/// Reading NumPy's `.npz` archives (`numpy.savez` and
/// `numpy.savez_compressed`): a ZIP file of `.npy` members, stored or
/// deflated.
public enum NPZ {
  /// Every array in the archive, by name without the `.npy` extension.
  /// - Throws: `FileError`, `NPYError`.
  public static func read(_ path: String) throws -> [String: NPYArray] {
    try decode(FileIO.readAll(path))
  }

  public static func decode(_ bytes: [UInt8]) throws -> [String: NPYArray] {
    func u16(_ at: Int) throws -> Int {
      guard at >= 0, at + 2 <= bytes.count else { throw NPYError.malformedHeader(reason: "ZIP structure runs past the end") }
      return Int(bytes[at]) | Int(bytes[at + 1]) << 8
    }
    func u32(_ at: Int) throws -> Int { try u16(at) | u16(at + 2) << 16 }
    // The end-of-central-directory record is in the last 64 KiB + 22 bytes.
    let earliest = max(0, bytes.count - 65557)
    guard let end = stride(from: bytes.count - 22, through: earliest, by: -1).first(where: {
      $0 >= 0 && bytes[$0] == 0x50 && bytes[$0 + 1] == 0x4B && bytes[$0 + 2] == 5 && bytes[$0 + 3] == 6
    }) else { throw NPYError.malformedHeader(reason: "not a ZIP (.npz) archive") }
    let entries = try u16(end + 10)
    var offset = try u32(end + 16)
    var arrays: [String: NPYArray] = [:]
    for _ in 0..<entries {
      guard try u32(offset) == 0x0201_4B50 else { throw NPYError.malformedHeader(reason: "bad ZIP central directory") }
      let method = try u16(offset + 10)
      let compressed = try u32(offset + 20), size = try u32(offset + 24)
      let nameLength = try u16(offset + 28), extra = try u16(offset + 30), comment = try u16(offset + 32)
      let local = try u32(offset + 42)
      guard offset + 46 + nameLength <= bytes.count else { throw NPYError.malformedHeader(reason: "ZIP name runs past the end") }
      let name = String(decoding: bytes[(offset + 46)..<(offset + 46 + nameLength)], as: UTF8.self)
      offset += 46 + nameLength + extra + comment
      guard compressed != 0xFFFF_FFFF, size != 0xFFFF_FFFF else {
        throw NPYError.malformedHeader(reason: "\(name): ZIP64 members are not supported")
      }
      guard try u32(local) == 0x0403_4B50 else { throw NPYError.malformedHeader(reason: "\(name): bad local header") }
      let start = local + 30 + (try u16(local + 26)) + (try u16(local + 28))
      guard start >= 0, start + compressed <= bytes.count else { throw NPYError.truncated(expectedBytes: compressed, actualBytes: bytes.count - start) }
      let member: [UInt8]
      switch method {
      case 0: member = Array(bytes[start..<(start + compressed)])
      case 8:
        // Deflate expands at most 1032 times: a larger claim is false, and
        // the buffer is set aside only once it fits the budget.
        guard size <= compressed * 1032 + 1024 else {
          throw NPYError.malformedHeader(reason: "\(name): \(size) bytes claimed from \(compressed) deflated")
        }
        try MemoryBudget.check(size) { NPYError.exceedsMemoryBudget(member: name, bytes: $0, budget: $1) }
        var out = [UInt8](repeating: 0, count: size)
        var message = [CChar](repeating: 0, count: Int(ATR_MESSAGE_CAPACITY))
        let status = bytes.withUnsafeBufferPointer { input in
          out.withUnsafeMutableBufferPointer { output in
            atr_inflate_raw(input.baseAddress! + start, compressed, output.baseAddress, size, &message)
          }
        }
        guard status == ATR_OK else {
          throw NPYError.malformedHeader(reason: "\(name): \(String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))")
        }
        member = out
      default: throw NPYError.malformedHeader(reason: "\(name): ZIP compression method \(method) is not supported")
      }
      let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
      arrays[key] = try NPY.decode(member)
    }
    return arrays
  }
}
