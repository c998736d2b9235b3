/// Why an output name template was refused.
public enum OutputNameError: Error, Equatable, CustomStringConvertible {
  case unknownField(template: String, field: String)
  case unclosedBrace(template: String)
  /// The template makes names outside the output folder (absolute, `..`)
  /// or an empty name.
  case escapes(template: String)

  public var description: String {
    switch self {
    case .unknownField(let template, let field):
      "--name '\(template)': unknown field {\(field)}; the fields are {stem}, {name}, {parent} and {index}"
    case .unclosedBrace(let template): "--name '\(template)': a '{' without its '}'"
    case .escapes(let template): "--name '\(template)': the name must stay inside the output folder (no leading '/', no '..')"
    }
  }
}

/// Where a batch writes the output of each input, relative to the output
/// folder: a template with fields taken from the input's path.
///
/// - `{stem}`: the file name without its last extension (`a` for `x/a.png`)
/// - `{name}`: the file name (`a.png`)
/// - `{parent}`: the name of the folder holding it (`x`; `.` for a bare name)
/// - `{index}`: its position in the batch's sorted input list, from 0
///
/// A `/` in the template makes subfolders, which the batch creates.
public struct OutputName: Sendable, Equatable {
  enum Piece: Equatable { case text(String), stem, name, parent, index }

  public let template: String
  let pieces: [Piece]

  public init(_ template: String) throws {
    var pieces: [Piece] = [], text = "", rest = Substring(template)
    while let first = rest.first {
      rest = rest.dropFirst()
      guard first == "{" else { text.append(first); continue }
      guard let close = rest.firstIndex(of: "}") else { throw OutputNameError.unclosedBrace(template: template) }
      let field = String(rest[..<close])
      rest = rest[rest.index(after: close)...]
      if !text.isEmpty { pieces.append(.text(text)); text = "" }
      switch field {
      case "stem": pieces.append(.stem)
      case "name": pieces.append(.name)
      case "parent": pieces.append(.parent)
      case "index": pieces.append(.index)
      default: throw OutputNameError.unknownField(template: template, field: field)
      }
    }
    if !text.isEmpty { pieces.append(.text(text)) }
    let parts = template.split(separator: "/", omittingEmptySubsequences: false)
    if template.hasPrefix("/") || parts.contains("..") || template.hasSuffix("/") || pieces.isEmpty {
      throw OutputNameError.escapes(template: template)
    }
    self.template = template
    self.pieces = pieces
  }

  /// The name for `input`, the `index`-th of the sorted list. A field's
  /// value never adds a folder level: a `/` inside it cannot occur, and
  /// `..` as a whole value (a parent named so) becomes `_`.
  public func render(input: String, index: Int) -> String {
    let components = input.split(separator: "/").map(String.init)
    let name = components.last ?? input
    let stem = name.lastIndex(of: ".").flatMap { $0 == name.startIndex ? nil : String(name[..<$0]) } ?? name
    let parent = components.count >= 2 ? components[components.count - 2] : "."
    return pieces.map { piece -> String in
      switch piece {
      case .text(let text): text
      case .stem: Self.safe(stem)
      case .name: Self.safe(name)
      case .parent: Self.safe(parent)
      case .index: String(index)
      }
    }.joined()
  }

  private static func safe(_ value: String) -> String { value == ".." ? "_" : value }
}
