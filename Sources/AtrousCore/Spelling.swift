/// "Did you mean" for names typed by hand: built-in models, filters,
/// layers.
public enum Spelling {
  /// The candidate nearest to `word` by edit distance (case ignored), when
  /// it is near enough to be a slip: at most 2 edits, and at most a third
  /// of the longer word's letters. Ties go to the first candidate.
  public static func closest(to word: String, among candidates: [String]) -> String? {
    let typed = Array(word.lowercased())
    var best: (name: String, distance: Int)?
    for candidate in candidates {
      let letters = Array(candidate.lowercased())
      let distance = editDistance(typed, letters)
      let limit = min(2, max(1, max(typed.count, letters.count) / 3))
      if distance <= limit && distance < (best?.distance ?? Int.max) { best = (candidate, distance) }
    }
    return best?.name
  }

  /// " (did you mean 'x'?)" or "".
  public static func suggestion(for word: String, among candidates: [String]) -> String {
    phrase(closest(to: word, among: candidates))
  }

  /// " (did you mean 'x'?)" for a name found, "" for nil.
  public static func phrase(_ nearest: String?) -> String {
    nearest.map { " (did you mean '\($0)'?)" } ?? ""
  }

  /// Edits between two words: insertions, deletions, substitutions and
  /// swaps of neighbouring letters (the commonest slip, `mnsit`), each
  /// one edit (optimal string alignment distance).
  static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    if a.isEmpty { return b.count }
    // d[i][j]: edits between a's first i letters and b's first j.
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
      for j in stride(from: 1, through: b.count, by: 1) {
        d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
      }
    }
    return d[a.count][b.count]
  }
}
