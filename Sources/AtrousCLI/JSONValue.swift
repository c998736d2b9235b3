import FoundationEssentials

/// A JSON document of mixed values (the reports of `inspect --json` and
/// `erf`), encoded with sorted keys.
enum JSONValue: Encodable {
  case string(String), int(Int), unsigned(UInt64), double(Double), bool(Bool), null
  case array([JSONValue]), object([String: JSONValue])

  func encode(to encoder: Encoder) throws {
    var container = encoder.singleValueContainer()
    switch self {
    case .string(let value): try container.encode(value)
    case .int(let value): try container.encode(value)
    case .unsigned(let value): try container.encode(value)
    case .double(let value): try container.encode(value)
    case .bool(let value): try container.encode(value)
    case .null: try container.encodeNil()
    case .array(let values): try container.encode(values)
    case .object(let members): try container.encode(members)
    }
  }

  /// The document as text, keys sorted, on one line or indented.
  func text(pretty: Bool = false) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys]
    return String(decoding: try encoder.encode(self), as: UTF8.self)
  }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
  init(dictionaryLiteral elements: (String, JSONValue)...) {
    self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
  }
  init(_ value: String) { self = .string(value) }
  init(_ value: Int) { self = .int(value) }
  init(_ value: Double) { self = .double(value) }
  init(_ value: Bool) { self = .bool(value) }
  init(_ values: [Int]) { self = .array(values.map(JSONValue.int)) }
  init(_ values: [Double]) { self = .array(values.map(JSONValue.double)) }
}
