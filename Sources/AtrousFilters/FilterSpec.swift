import AtrousCore

/// Parses the filter notation of the command line: `name` or
/// `name:item,item,...`, where an item is `key=value` or, for a few
/// filters, a bare word or number.
///
/// Every filter takes `border=` (constant, replicate, reflect, reflect101,
/// wrap; `constant:V` or `value=V` sets the constant), `stride=` and
/// `dilation=` (N or Y:X), and `padding=` (same, same-lower, valid, N, Y:X
/// or T:B:L:R).
///
///     sobel:dx  sobel:dy  sobel:mag  sobel:dir  sobel:dx=2,dy=0,ksize=5
///     scharr:dx  prewitt:mag  gaussian:sigma=2  gaussian:ksize=7
///     box:size=5  laplacian:ksize=3  log:sigma=2  dog:sigma=1,sigma2=1.6
///     unsharp:sigma=1,amount=1.5  kernel:1,0,-1;2,0,-2;1,0,-1
///     kernel:file=k.npy  separable:1,2,1;-1,0,1   (row taps; column taps)
public enum FilterSpec {
  public static let knownNames = ["sobel", "scharr", "prewitt", "gaussian", "box", "laplacian", "log", "dog",
                                  "unsharp", "kernel", "separable"]

  /// Parses one filter.
  /// - Parameter loadKernel: reads `kernel:file=PATH` (a .npy or .csv file).
  /// - Throws: `FilterError` naming what is wrong.
  public static func parse(_ text: String, loadKernel: (String) throws -> Kernel2D = { _ in
    throw FilterError.malformedKernel(reason: "kernel files are not available here")
  }) throws -> Filter {
    let name: String, rest: Substring
    if let colon = text.firstIndex(of: ":") {
      name = String(text[..<colon]).lowercased()
      rest = text[text.index(after: colon)...]
    } else {
      name = text.lowercased()
      rest = ""
    }
    guard knownNames.contains(name) else { throw FilterError.unknownFilter(name) }
    var options: [String: String] = [:]
    var words: [String] = []
    for item in rest.split(separator: ",", omittingEmptySubsequences: false) {
      let item = item.trimmingSpaces
      if let equals = item.firstIndex(of: "=") {
        let key = item[..<equals].lowercased()
        guard options[key] == nil else {
          throw FilterError.invalidParameter(name: key, value: String(item[item.index(after: equals)...]), reason: "given twice")
        }
        options[key] = String(item[item.index(after: equals)...])
      } else {
        words.append(item)
      }
    }
    var reader = OptionReader(filter: name, options: options)
    do {
      let geometry = try reader.geometry()
      let filter = try build(name, words: words, reader: &reader, geometry: geometry, loadKernel: loadKernel)
      try reader.finish()
      return filter
    } catch {
      // A mistyped parameter (sgima=2, near one the filter read) is the
      // likelier cause of whatever failed without it (a missing sigma).
      try reader.finishMistyped()
      throw error
    }
  }

  private static func build(_ name: String, words: [String], reader: inout OptionReader, geometry: FilterGeometry,
                            loadKernel: (String) throws -> Kernel2D) throws -> Filter {
    func noWords() throws {
      if let word = words.first(where: { !$0.isEmpty }) { throw FilterError.unknownParameter(filter: name, name: word) }
    }
    switch name {
    case "sobel", "scharr", "prewitt":
      let mode = words.filter { !$0.isEmpty }
      guard mode.count <= 1 else { throw FilterError.unknownParameter(filter: name, name: mode[1]) }
      let ksize = name == "sobel" ? try reader.int("ksize") ?? 3 : 3
      let scale = try reader.float("scale") ?? 1
      let op = Filter.GradientOperator(rawValue: name)!
      switch mode.first?.lowercased() {
      case "mag", "magnitude":
        return try .gradient(op, ksize: ksize, scale: scale, geometry: geometry)
      case "dir", "direction", "angle":
        return try .gradient(op, direction: true, ksize: ksize, scale: scale, geometry: geometry)
      case "dx", "dy", nil:
        var dx = mode.first == "dx" ? 1 : 0, dy = mode.first == "dy" ? 1 : 0
        if let value = try reader.int("dx") { dx = value }
        if let value = try reader.int("dy") { dy = value }
        guard dx != 0 || dy != 0 else {
          throw FilterError.invalidParameter(name: name, value: "", reason: "give dx, dy, mag or dir (e.g. \(name):dx)")
        }
        switch op {
        case .sobel: return try .sobel(dx: dx, dy: dy, ksize: ksize, scale: scale, geometry: geometry)
        case .scharr: return try .scharr(dx: dx, dy: dy, scale: scale, geometry: geometry)
        case .prewitt: return try .prewitt(dx: dx, dy: dy, scale: scale, geometry: geometry)
        }
      case let other?:
        throw FilterError.unknownParameter(filter: name, name: other)
      }
    case "gaussian":
      try noWords()
      let sigma = try reader.double("sigma") ?? 0
      let sigmaY = try reader.double("sigma_y") ?? reader.double("sigmay")
      let ksize = try reader.int("ksize")
      return try .gaussian(sigma: sigma, sigmaY: sigmaY, ksize: ksize, geometry: geometry)
    case "box":
      try noWords()
      let size = try reader.int("size") ?? reader.int("ksize") ?? 3
      return try .box(width: try reader.int("width") ?? size, height: try reader.int("height") ?? size, geometry: geometry)
    case "laplacian":
      try noWords()
      return try .laplacian(ksize: try reader.int("ksize") ?? 1, scale: try reader.float("scale") ?? 1, geometry: geometry)
    case "log":
      try noWords()
      guard let sigma = try reader.double("sigma") else {
        throw FilterError.invalidParameter(name: "sigma", value: "", reason: "log needs sigma")
      }
      return try .laplacianOfGaussian(sigma: sigma, geometry: geometry)
    case "dog":
      try noWords()
      guard let sigma = try reader.double("sigma") else {
        throw FilterError.invalidParameter(name: "sigma", value: "", reason: "dog needs sigma")
      }
      let k = try reader.double("k") ?? 1.6
      return try .differenceOfGaussians(sigma: sigma, sigma2: try reader.double("sigma2") ?? sigma * k, geometry: geometry)
    case "unsharp":
      try noWords()
      return try .unsharp(sigma: try reader.double("sigma") ?? 1, amount: try reader.float("amount") ?? 1,
                          geometry: geometry)
    case "kernel":
      let kernel: Kernel2D
      if let path = reader.string("file") {
        try noWords()
        kernel = try loadKernel(path)
      } else {
        kernel = try parseMatrix(words.joined(separator: ","))
      }
      return .correlation(kernel, geometry: geometry)
    case "separable":
      let rows = try parseRows(words.joined(separator: ","))
      guard rows.count == 2 else {
        throw FilterError.malformedKernel(reason: "separable takes two vectors, row taps then column taps, separated by ';'")
      }
      return Filter(.separable(row: rows[0], column: rows[1]), geometry: geometry, name: "separable")
    default:
      throw FilterError.unknownFilter(name)
    }
  }

  /// A matrix written as rows separated by ';' and values by ','.
  public static func parseMatrix(_ text: String) throws -> Kernel2D {
    let rows = try parseRows(text)
    guard let width = rows.first?.count, rows.allSatisfy({ $0.count == width }) else {
      throw FilterError.malformedKernel(reason: "rows of different lengths: \(rows.map(\.count))")
    }
    return Kernel2D(rows: rows.count, columns: width, values: rows.flatMap { $0 })
  }

  static func parseRows(_ text: String) throws -> [[Float]] {
    guard !text.trimmingSpaces.isEmpty else { throw FilterError.malformedKernel(reason: "no values") }
    return try text.split(separator: ";", omittingEmptySubsequences: false).map { row in
      try row.split(separator: ",", omittingEmptySubsequences: false).map { item in
        let token = item.trimmingSpaces
        guard let value = Float(token), value.isFinite else {
          throw FilterError.malformedKernel(reason: "'\(token)' is not a number")
        }
        return value
      }
    }
  }
}

/// Reads typed `key=value` options and notices any left unread.
struct OptionReader {
  let filter: String
  var options: [String: String]
  /// The parameters read so far: those the filter takes.
  private var asked: [String] = []

  init(filter: String, options: [String: String]) {
    self.filter = filter
    self.options = options
  }

  mutating func string(_ key: String) -> String? {
    asked.append(key)
    return options.removeValue(forKey: key)
  }

  mutating func int(_ key: String) throws -> Int? {
    guard let text = string(key) else { return nil }
    guard let value = Int(text) else { throw FilterError.invalidParameter(name: key, value: text, reason: "not a whole number") }
    return value
  }

  mutating func double(_ key: String) throws -> Double? {
    guard let text = string(key) else { return nil }
    guard let value = Double(text), value.isFinite else {
      throw FilterError.invalidParameter(name: key, value: text, reason: "not a number")
    }
    return value
  }

  mutating func float(_ key: String) throws -> Float? { try double(key).map(Float.init) }

  /// N or Y:X.
  mutating func pair(_ key: String) throws -> (y: Int, x: Int)? {
    guard let text = string(key) else { return nil }
    let parts = text.split(separator: ":").map { Int($0) }
    guard (parts.count == 1 || parts.count == 2), parts.allSatisfy({ $0 != nil }) else {
      throw FilterError.invalidParameter(name: key, value: text, reason: "expected N or Y:X")
    }
    let y = parts[0]!, x = parts.count == 2 ? parts[1]! : y
    guard y >= 1, x >= 1, y <= Filter.maxTaps, x <= Filter.maxTaps else {
      throw FilterError.invalidParameter(name: key, value: text, reason: "must be 1 to \(Filter.maxTaps)")
    }
    return (y, x)
  }

  mutating func geometry() throws -> FilterGeometry {
    var geometry = FilterGeometry()
    if let stride = try pair("stride") { geometry.stride = stride }
    if let dilation = try pair("dilation") { geometry.dilation = dilation }
    if let text = string("padding") {
      switch text.lowercased() {
      case "same": geometry.padding = .same
      case "same-lower", "same_lower": geometry.padding = .sameLower
      case "valid": geometry.padding = .valid
      default:
        let parts = text.split(separator: ":").map { Int($0) }
        guard [1, 2, 4].contains(parts.count), parts.allSatisfy({ (0...Filter.maxTaps).contains($0 ?? -1) }) else {
          throw FilterError.invalidParameter(name: "padding", value: text,
                                             reason: "expected same, same-lower, valid, N, Y:X or T:B:L:R (0 <= N <= \(Filter.maxTaps))")
        }
        let p = parts.map { $0! }
        switch p.count {
        case 1: geometry.padding = .explicit(top: p[0], bottom: p[0], left: p[0], right: p[0])
        case 2: geometry.padding = .explicit(top: p[0], bottom: p[0], left: p[1], right: p[1])
        default: geometry.padding = .explicit(top: p[0], bottom: p[1], left: p[2], right: p[3])
        }
      }
    }
    var constant = try double("value").map(Float.init)
    if let text = string("border") {
      let parts = text.lowercased().split(separator: ":", maxSplits: 1)
      if parts.count == 2 {
        guard parts[0] == "constant", let value = Float(parts[1]), value.isFinite else {
          throw FilterError.invalidParameter(name: "border", value: text, reason: "only constant takes a value (constant:V)")
        }
        constant = value
      }
      switch parts.first ?? "" {
      case "constant": geometry.border = .constant(constant ?? 0)
      case "replicate", "edge": geometry.border = .replicate
      case "reflect", "symmetric": geometry.border = .reflect
      case "reflect101", "reflect_101", "mirror", "default": geometry.border = .reflect101
      case "wrap": geometry.border = .wrap
      default:
        throw FilterError.invalidParameter(name: "border", value: text,
                                           reason: "expected constant, replicate, reflect, reflect101 or wrap")
      }
    } else if let constant {
      geometry.border = .constant(constant)
    }
    return geometry
  }

  /// Throws `unknownParameter` for a key left unread that is a slip of
  /// one the filter read (the others may simply not have been read yet).
  func finishMistyped() throws {
    for key in options.keys.sorted() {
      if let nearest = Spelling.closest(to: key, among: asked) {
        throw FilterError.unknownParameter(filter: filter, name: key, nearest: nearest)
      }
    }
  }

  func finish() throws {
    if let key = options.keys.sorted().first {
      throw FilterError.unknownParameter(filter: filter, name: key, nearest: Spelling.closest(to: key, among: asked))
    }
  }
}

extension StringProtocol {
  var trimmingSpaces: String {
    String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
  }
}
