/// Einsum in plain loops: every combination of the equation's labels is
/// visited once, its product of operand elements added into the output
/// cell of its output labels. Ellipses stand for broadcast axes.
enum Einsum {
  static func register(_ table: inout OperatorTable) {
    table["Einsum"] = { c in [try einsum(c)] }
  }

  static func einsum(_ c: OpContext) throws -> NDArray {
    let operands = c.inputs.compactMap { $0?.standard() }
    let equation = try c.string("equation", default: "").filter { $0 != " " }
    // Labels are ASCII letters; "..." stands for broadcast axes.
    guard equation.allSatisfy({ ($0.isASCII && $0.isLetter) || ",->.".contains($0) }) else {
      throw c.invalid("equation", "'\(equation)': labels must be letters")
    }
    let sides = equation.components(separatedBy: "->")
    let terms = sides[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    guard sides.count <= 2, terms.count == operands.count else {
      throw c.invalid("equation", "'\(equation)' for \(operands.count) operands")
    }
    // Ellipsis axes become labels "0", "1", ... (as many as the widest operand needs).
    let broadcastRank = zip(terms, operands).map { term, x in term.contains("...") ? Swift.max(0, x.rank - (term.count - 3)) : 0 }
      .max() ?? 0
    let ellipsis = (0..<broadcastRank).map { Character(UnicodeScalar(0x30 + $0)!) }
    func labels(_ term: String, rank: Int?) -> [Character] {
      guard let range = term.firstRange(of: "...") else { return Array(term) }
      let width = rank.map { $0 - (term.count - 3) } ?? broadcastRank
      return Array(term[..<range.lowerBound]) + ellipsis.suffix(Swift.max(width, 0)) + Array(term[range.upperBound...])
    }
    var sizes: [Character: Int] = [:]
    var operandLabels: [[Character]] = []
    for (term, x) in zip(terms, operands) {
      let names = labels(term, rank: x.rank)
      guard names.count == x.rank else { throw c.invalid("equation", "'\(term)' for an operand of rank \(x.rank)") }
      // A label repeated in one operand takes its diagonal: equal sizes
      // only (a broadcast 1 there read past the operand).
      for (k, label) in names.enumerated() {
        if let first = names.firstIndex(of: label), first < k, x.shape[first] != x.shape[k] {
          throw c.mismatch("label \(label) is \(x.shape[first]) and \(x.shape[k]) in one operand")
        }
      }
      for (label, size) in zip(names, x.shape) {
        if let known = sizes[label], known != size {
          guard known == 1 || size == 1 else { throw c.mismatch("label \(label) is \(known) and \(size)") }
          sizes[label] = Swift.max(known, size)
        } else if sizes[label] == nil { sizes[label] = size }
      }
      operandLabels.append(names)
    }
    let output: [Character]
    if sides.count == 2 {
      output = labels(sides[1], rank: nil)
    } else {
      let counts = operandLabels.flatMap { $0 }.reduce(into: [Character: Int]()) { $0[$1, default: 0] += 1 }
      output = ellipsis + counts.filter { $0.value == 1 && !ellipsis.contains($0.key) }.map(\.key).sorted()
    }
    let all = output + Set(sizes.keys).subtracting(output).sorted()
    let dims = all.map { sizes[$0] ?? 1 }
    let shape = output.map { sizes[$0] ?? 1 }
    try c.checkShape(shape)
    try c.checkShape(dims, what: "iteration")
    // Strides of each operand along each label (0 where absent or broadcast).
    let strides = zip(operandLabels, operands).map { names, x -> [Int] in
      let own = NDArray.strides(x.shape)
      return all.map { label in
        guard let k = names.firstIndex(of: label), x.shape[k] > 1 else { return 0 }
        return names.indices.filter { names[$0] == label }.reduce(0) { $0 + own[$1] }
      }
    }
    let values = operands.map { $0.floatValues().map(Double.init) }
    var out = [Double](repeating: 0, count: shape.reduce(1, *))
    let outStrides = NDArray.strides(shape)
    var index = [Int](repeating: 0, count: all.count)
    for _ in 0..<dims.reduce(1, *) {
      var product = 1.0
      for (k, v) in values.enumerated() {
        var offset = 0
        for a in 0..<all.count { offset += index[a] * strides[k][a] }
        product *= v[offset]
      }
      var at = 0
      for a in 0..<output.count { at += index[a] * outStrides[a] }
      out[at] += product
      advance(&index, within: dims)
    }
    return NDArray(shape: shape, floats: out.map { Float($0) })
  }
}
