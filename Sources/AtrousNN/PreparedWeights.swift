/// Per-node data derived from constant weights, computed on first use and
/// kept for later runs of the same executor, keyed by node index and a
/// label of what it is; and per-node plans, keyed by node index and the
/// facts of the input they were made for.
final class PreparedWeights: Sendable {
  struct Key: Hashable {
    var node: Int
    var label: String
  }

  /// Arrays of floats, or `AlignedStorage` where the prepared form is
  /// large and written once (Winograd's transformed kernels: pooled
  /// memory, on huge pages from 4 MiB, where a fresh process's first run
  /// finds pages already faulted in; an array's pages are faulted one by
  /// one); a label always holds values of one type.
  private let store = MemoCache<Key, Any>()

  func value<Value>(_ node: Int, _ label: String, make: () -> Value) -> Value {
    store.value(Key(node: node, label: label), make: make) as! Value
  }

  /// What a node settles once for inputs of one shape and layout (its
  /// geometry, strategy, bias and fused steps), so later runs only execute.
  struct PlanKey: Hashable {
    var node: Int
    /// The input's shape, layout and whatever else the plan depends on.
    var facts: [Int]
  }

  private let plans = MemoCache<PlanKey, Any>()

  /// The plan kept for node `node` and `facts`, made by `make` the first
  /// time (a failure is thrown every time, nothing kept).
  func plan<P>(_ node: Int, facts: [Int], make: () throws -> P) rethrows -> P {
    try plans.value(PlanKey(node: node, facts: facts), make: make) as! P
  }
}

