import AtrousCore

/// Why a filter could not be built or applied.
public enum FilterError: Error, Equatable, CustomStringConvertible {
  /// The filter name is not one Atrous knows.
  case unknownFilter(String)
  /// A `key=value` the filter does not take.
  /// `nearest`: the parameter the filter takes that `name` is closest to.
  case unknownParameter(filter: String, name: String, nearest: String? = nil)
  /// A parameter value that is malformed or out of range.
  case invalidParameter(name: String, value: String, reason: String)
  /// A kernel given as text or a file that cannot be used.
  case malformedKernel(reason: String)
  /// The dilated kernel is larger than the padded input.
  case kernelTooLarge(extent: Int, paddedSize: Int, axis: String)
  /// The input with its padding, which the stages read whole (and which
  /// bounds the output), is larger than `FilterChain.maxOutputPixels`.
  case paddedInputTooLarge(height: Int, width: Int)
  /// The float32 output would not fit the memory budget.
  case exceedsMemoryBudget(height: Int, width: Int, bytes: Int, budget: MemoryBudget)
  /// The input rows a stream must hold at once (the kernels' heights, or
  /// the whole image when a border wraps) would not fit the memory budget.
  case windowExceedsMemoryBudget(rows: Int, width: Int, bytes: Int, budget: MemoryBudget)

  public var description: String {
    switch self {
    case .unknownFilter(let name):
      "unknown filter '\(name)' (known: \(FilterSpec.knownNames.joined(separator: ", ")))"
    case .unknownParameter(let filter, let name, let nearest):
      "filter '\(filter)' takes no parameter '\(name)'\(Spelling.phrase(nearest))"
    case .invalidParameter(let name, let value, let reason): "\(name)=\(value): \(reason)"
    case .malformedKernel(let reason): "malformed kernel: \(reason)"
    case .kernelTooLarge(let extent, let paddedSize, let axis):
      "the kernel spans \(extent) samples but the padded input \(axis) is only \(paddedSize)"
    case .exceedsMemoryBudget(let height, let width, let bytes, let budget):
      "the \(width)x\(height) float32 output would take \(MemoryBudget.format(bytes)), more than \(budget)"
    case .windowExceedsMemoryBudget(let rows, let width, let bytes, let budget):
      "filtering holds \(rows) rows of \(width) pixels at once, \(MemoryBudget.format(bytes)) with the output rows, more than \(budget)"
    case .paddedInputTooLarge(let height, let width):
      "the padded input would be \(width)x\(height) pixels, more than \(FilterChain.maxOutputPixels): the kernel is far larger than the image"
    }
  }
}
