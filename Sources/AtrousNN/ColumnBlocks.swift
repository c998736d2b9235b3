import AtrousCore

/// A map read as (outer, rows, inner) cut, per outer index, into blocks of
/// at most `width` adjacent columns: the reductions, ArgMax and softmax
/// across rows run each block over all its rows while its accumulators
/// stay in cache, and the blocks are independent, so they split across
/// threads.
struct ColumnBlocks {
  let outer: Int, inner: Int, width: Int

  private var perOuter: Int { (inner + width - 1) / width }
  /// Blocks in all (none when there are no columns).
  var count: Int { outer * perOuter }

  /// `body(scratch, o, columns)` for every block, the outer index `o` and
  /// its columns, on up to `threads` threads (one for fewer than
  /// `Elementwise.parallelThreshold` elements of `elements`), each with
  /// scratch of `scratchFloats` floats of its own, made once per call.
  func forEach(elements: Int, threads: Int, scratchFloats: Int,
               _ body: (_ scratch: UnsafeMutableRawPointer, _ o: Int, _ columns: Range<Int>) -> Void) {
    let workers = max(1, min(count, elements >= Elementwise.parallelThreshold ? threads : 1))
    let scratch = ConvKernel.scratch(workers, floats: scratchFloats)
    let perOuter = self.perOuter
    Parallel.dynamic(count, workers: workers) { worker, block in
      let first = block % perOuter * width
      body(scratch[worker].pointer, block / perOuter, first..<min(inner, first + width))
    }
  }
}
