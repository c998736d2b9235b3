#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension String {
  /// `arguments` formatted by C's printf rules (`"%.1f"`, `"%ld"`), for
  /// numbers in fixed notation, which string interpolation cannot write.
  /// An `Int` takes `%ld`.
  public init(printf format: String, _ arguments: CVarArg...) {
    var buffer = [CChar](repeating: 0, count: 128)
    // vsnprintf consumes its list and says how long the whole result is;
    // a longer one is formatted again into a buffer that holds it.
    var length = Int(withVaList(arguments) { vsnprintf(&buffer, buffer.count, format, $0) })
    if length >= buffer.count {
      buffer = [CChar](repeating: 0, count: length + 1)
      length = Int(withVaList(arguments) { vsnprintf(&buffer, buffer.count, format, $0) })
    }
    self = String(decoding: buffer[0..<Swift.max(0, length)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
