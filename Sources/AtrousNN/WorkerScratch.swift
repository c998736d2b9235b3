import AtrousCore

/// Scratch memory for the workers of a parallel loop (kernels' scratch,
/// `DepthwiseRing`s): one part of `bytes` per worker, all cut from one
/// block, so that a worker finds its part at the same place on every
/// call, in its own core's cache.
///
/// A block per worker went back to the pool, and the pool hands out the
/// block kept last first: the next call gave each worker the block the
/// other had used, whose lines sat in the other core's cache. A 3x3
/// convolution of 32 -> 128 channels at 27x27 (Winograd blocks, 221 KB of
/// products per worker) then took 1.07 times one thread's time at 2
/// threads, against 0.82 with one block; 64 -> 256 at 13x13 0.96 against
/// 0.77 (AMD EPYC, medians of 4 alternating runs).
struct WorkerScratch {
  /// A worker's part.
  struct Part {
    let pointer: UnsafeMutableRawPointer
  }

  private let storage: AlignedStorage
  /// Bytes from one part to the next: whole pages, so that no two
  /// workers write the same cache line.
  private let stride: Int

  init(workers: Int, bytes: Int) {
    stride = (bytes + 4095) / 4096 * 4096
    storage = AlignedStorage(byteCount: max(0, workers) * stride, zeroed: false)
  }

  subscript(worker: Int) -> Part {
    Part(pointer: storage.pointer + worker * stride)
  }
}
