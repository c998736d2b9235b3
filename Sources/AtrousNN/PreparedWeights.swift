/// Per-node data derived from constant weights, computed on first use and
/// kept for later runs of the same executor, keyed by node index and a
/// label of what it is.
final class PreparedWeights: Sendable {
  struct Key: Hashable {
    var node: Int
    var label: String
  }

  private let store = MemoCache<Key, [[Float]]>()

  func value(_ node: Int, _ label: String, make: () -> [[Float]]) -> [[Float]] {
    store.value(Key(node: node, label: label), make: make)
  }
}

