/// One filter: what it computes and where its kernel visits the input.
///
/// Filters correlate (the kernel is not flipped), as OpenCV's do; `flipped`
/// turns correlation into convolution.
public struct Filter: Sendable, Equatable {
  /// A separable term: the outer product column ⊗ row, scaled by weight.
  public struct Term: Sendable, Equatable {
    public var weight: Float
    public var row: [Float]
    public var column: [Float]
  }

  public enum Operation: Sendable, Equatable {
    /// Correlation with column ⊗ row, done as a row pass and a column pass.
    case separable(row: [Float], column: [Float])
    /// Correlation with a kernel that is not rank 1.
    case kernel(Kernel2D)
    /// A weighted sum of separable filters of one size.
    case combination([Term])
    /// Magnitude sqrt(gx² + gy²) of an x and a y derivative filter.
    case gradientMagnitude(dx: Term, dy: Term)
    /// Direction atan2(gy, gx) in radians, in [0, 2π) as cv2.phase gives.
    case gradientDirection(dx: Term, dy: Term)
  }

  public var operation: Operation
  public var geometry: FilterGeometry
  /// What the filter was called, for messages and timings.
  public var name: String

  public init(_ operation: Operation, geometry: FilterGeometry = FilterGeometry(), name: String) {
    self.operation = operation.aligned
    self.geometry = geometry
    self.name = name
  }

  /// Correlation with `kernel`; a rank-1 kernel (within float tolerance)
  /// runs as two 1-D passes with the same result.
  public static func correlation(_ kernel: Kernel2D, geometry: FilterGeometry = FilterGeometry(),
                                 name: String = "kernel") -> Filter {
    if let (column, row) = kernel.separated() {
      return Filter(.separable(row: row, column: column), geometry: geometry, name: name)
    }
    return Filter(.kernel(kernel), geometry: geometry, name: name)
  }

  /// Kernel extent (rows, columns) before dilation.
  public var kernelSize: (rows: Int, columns: Int) {
    switch operation {
    case .separable(let row, let column): (column.count, row.count)
    case .kernel(let kernel): (kernel.rows, kernel.columns)
    case .combination(let terms): (terms[0].column.count, terms[0].row.count)
    case .gradientMagnitude(let dx, _), .gradientDirection(let dx, _): (dx.column.count, dx.row.count)
    }
  }

  /// The same filter with every kernel turned 180 degrees (convolution).
  public var flipped: Filter {
    func flip(_ t: Term) -> Term { Term(weight: t.weight, row: t.row.reversed(), column: t.column.reversed()) }
    var result = self
    switch operation {
    case .separable(let row, let column): result.operation = .separable(row: row.reversed(), column: column.reversed())
    case .kernel(let kernel): result.operation = .kernel(kernel.flipped)
    case .combination(let terms): result.operation = .combination(terms.map(flip))
    case .gradientMagnitude(let dx, let dy): result.operation = .gradientMagnitude(dx: flip(dx), dy: flip(dy))
    case .gradientDirection(let dx, let dy): result.operation = .gradientDirection(dx: flip(dx), dy: flip(dy))
    }
    return result
  }

  /// Output (height, width) for an input of the given size.
  /// - Throws: `FilterError` when the kernel does not fit.
  public func outputSize(height: Int, width: Int) throws -> (height: Int, width: Int) {
    try sizes(height: height, width: width).output
  }

  /// The size of the input with its padding, which the stages read whole
  /// (their work is proportional to it).
  public func paddedSize(height: Int, width: Int) throws -> (height: Int, width: Int) {
    try sizes(height: height, width: width).padded
  }

  private func sizes(height: Int, width: Int) throws -> (output: (height: Int, width: Int), padded: (height: Int, width: Int)) {
    let size = kernelSize
    let v = try geometry.plan(count: height, taps: size.rows, vertical: true)
    let h = try geometry.plan(count: width, taps: size.columns, vertical: false)
    // A kernel far larger than the image (box:size=65536 on 32x32) would
    // take minutes for a few output pixels, so the padded input is held to
    // the output limit.
    let (paddedHeight, paddedWidth) = (height + v.padBegin + v.padEnd, width + h.padBegin + h.padEnd)
    let (padded, overflow) = paddedHeight.multipliedReportingOverflow(by: paddedWidth)
    guard !overflow, padded <= FilterChain.maxOutputPixels else {
      throw FilterError.paddedInputTooLarge(height: paddedHeight, width: paddedWidth)
    }
    return ((v.outputCount, h.outputCount), (paddedHeight, paddedWidth))
  }

  /// The input rows that output rows `rows` read, after the border; nil
  /// when they read none (only a constant border's rows).
  func inputRows(for rows: Range<Int>, inputHeight: Int) throws -> Range<Int>? {
    let taps = kernelSize.rows
    let plan = try geometry.plan(count: inputHeight, taps: taps, vertical: true)
    let last = plan.firstTap(rows.upperBound - 1) + (taps - 1) * plan.dilation
    return geometry.border.indices(covering: plan.firstTap(rows.lowerBound)...last, count: inputHeight)
  }

  /// The input position of the kernel centre for output position `i`.
  func centre(of i: Int, count: Int, vertical: Bool) -> Int {
    let size = kernelSize
    let taps = vertical ? size.rows : size.columns
    guard let plan = try? geometry.plan(count: count, taps: taps, vertical: vertical) else { return i }
    return plan.firstTap(i) + plan.dilation * (taps - 1) / 2
  }

  /// The stage that computes this filter's rows from `upstream`'s.
  func makeStage(upstream: RowStage) throws -> ComputedStage {
    switch operation {
    case .separable(let row, let column):
      if BoxStage.applies(row: row, column: column, geometry: geometry) {
        return try BoxStage(upstream: upstream, row: row, column: column, geometry: geometry)
      }
      return try SeparableStage(upstream: upstream, row: row, column: column, geometry: geometry)
    case .kernel(let kernel):
      return try Kernel2DStage(upstream: upstream, kernel: kernel, geometry: geometry)
    case .combination(let terms):
      return try CombinationStage(upstream: upstream, terms: terms.map { ($0.weight, $0.row, $0.column) },
                                  geometry: geometry)
    case .gradientMagnitude(let dx, let dy):
      if isSobel3(dx, dy) && geometry.stride == (1, 1) && geometry.dilation == (1, 1)
        && (geometry.padding == .same || geometry.padding == .sameLower)
      {
        return Sobel3MagnitudeStage(upstream: upstream, border: geometry.border)
      }
      return try GradientStage(upstream: upstream, dx: (scaled(dx), dx.column), dy: (scaled(dy), dy.column),
                               output: .magnitude, geometry: geometry)
    case .gradientDirection(let dx, let dy):
      return try GradientStage(upstream: upstream, dx: (scaled(dx), dx.column), dy: (scaled(dy), dy.column),
                               output: .direction, geometry: geometry)
    }
  }

  private func scaled(_ term: Term) -> [Float] { term.weight == 1 ? term.row : term.row.map { $0 * term.weight } }

  /// The 3x3 Sobel pair, flipped or not (flipping negates both derivatives,
  /// which leaves the magnitude alone), with unit weights.
  private func isSobel3(_ dx: Term, _ dy: Term) -> Bool {
    let d: Set<[Float]> = [[-1, 0, 1], [1, 0, -1]]
    return dx.weight == 1 && dy.weight == 1 && d.contains(dx.row) && dx.column == [1, 2, 1]
      && dy.row == [1, 2, 1] && d.contains(dy.column) && dx.row == dy.column
  }
}

extension Filter.Operation {
  /// Terms padded with zero taps to one size, so that their outputs line up
  /// under any stride or padding.
  var aligned: Filter.Operation {
    func align(_ terms: [Filter.Term]) -> [Filter.Term] {
      let rows = terms.map(\.column.count).max()!, columns = terms.map(\.row.count).max()!
      return terms.map {
        Filter.Term(weight: $0.weight, row: centred($0.row, length: columns), column: centred($0.column, length: rows))
      }
    }
    switch self {
    case .combination(let terms): return .combination(align(terms))
    case .gradientMagnitude(let dx, let dy):
      let t = align([dx, dy])
      return .gradientMagnitude(dx: t[0], dy: t[1])
    case .gradientDirection(let dx, let dy):
      let t = align([dx, dy])
      return .gradientDirection(dx: t[0], dy: t[1])
    default: return self
    }
  }
}
