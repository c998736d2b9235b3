import AtrousCore

/// MaxPool, AveragePool and the global pools on channels-last storage.
enum Pooling {
  static func register(_ table: inout OperatorTable) {
    table["MaxPool"] = { c in [try pool(c, max: true)] }
    table["AveragePool"] = { c in [try pool(c, max: false)] }
    table["GlobalAveragePool"] = { c in [try global(c, max: false)] }
    table["GlobalMaxPool"] = { c in [try global(c, max: true)] }
  }

  static func pool(_ c: OpContext, max: Bool) throws -> NDArray {
    let x = try c.input(0)
    guard x.rank == 4 else { throw c.unsupported("input rank", x.rank) }
    if c.node.outputs.count > 1 && !c.node.outputs[1].isEmpty { throw c.unsupported("Indices output", c.node.outputs[1]) }
    guard let kernel = try c.ints("kernel_shape") else { throw c.invalid("kernel_shape", "required") }
    let ceilMode = try c.int("ceil_mode", default: 0) == 1
    let includePad = try c.int("count_include_pad", default: 0) == 1
    let axes = try windowAxes(c, height: x.shape[2], width: x.shape[3], kernel: kernel, ceilMode: ceilMode)
    if c.shapesOnly {
      return NDArray(channelsLast: Tensor.uninitialized(shape: [x.shape[0], axes[0].output, axes[1].output, x.shape[1]]))
    }
    let input = x.toChannelsLast().storage!
    let (n, h, w, ch) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let (oh, ow) = (axes[0].output, axes[1].output)
    var output = Tensor.uninitialized(shape: [n, oh, ow, ch])
    // Bands of output rows across threads, once the map is big enough to pay for them.
    let bands = Parallel.ranges(n * oh, parts: output.count >= 1 << 16 ? c.threads : 1)
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        Parallel.run(bands.count) { band in
          var accumulator = [Float](repeating: 0, count: ch)
          for row in bands[band] {
            let b = row / oh, oy = row % oh
            for ox in 0..<ow {
              for k in 0..<ch { accumulator[k] = max ? -Float.infinity : 0 }
              var valid = 0, padded = 0
              for ky in 0..<axes[0].kernel {
                let iy = oy * axes[0].stride - axes[0].padBegin + ky * axes[0].dilation
                let inPaddedY = iy >= -axes[0].padBegin && iy < h + axes[0].padEnd
                for kx in 0..<axes[1].kernel {
                  let ix = ox * axes[1].stride - axes[1].padBegin + kx * axes[1].dilation
                  if inPaddedY && ix >= -axes[1].padBegin && ix < w + axes[1].padEnd { padded += 1 }
                  if iy < 0 || iy >= h || ix < 0 || ix >= w { continue }
                  valid += 1
                  let pixel = src.baseAddress! + ((b * h + iy) * w + ix) * ch
                  if max {
                    for k in 0..<ch { accumulator[k] = Swift.max(accumulator[k], pixel[k]) }
                  } else {
                    for k in 0..<ch { accumulator[k] += pixel[k] }
                  }
                }
              }
              let out = dst.baseAddress! + ((b * oh + oy) * ow + ox) * ch
              if max {
                for k in 0..<ch { out[k] = accumulator[k] }
              } else {
                let divisor = Float(Swift.max(includePad ? padded : valid, 1))
                for k in 0..<ch { out[k] = accumulator[k] / divisor }
              }
            }
          }
        }
      }
    }
    return NDArray(channelsLast: output)
  }

  static func global(_ c: OpContext, max: Bool) throws -> NDArray {
    let x = try c.input(0)
    guard x.rank == 4 else { throw c.unsupported("input rank", x.rank) }
    let input = x.toChannelsLast().storage!
    let (n, h, w, ch) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    var output = Tensor(shape: [n, 1, 1, ch], repeating: max ? -Float.infinity : 0)
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        for b in 0..<n {
          let out = dst.baseAddress! + b * ch
          for p in 0..<(h * w) {
            let pixel = src.baseAddress! + (b * h * w + p) * ch
            if max {
              for k in 0..<ch { out[k] = Swift.max(out[k], pixel[k]) }
            } else {
              for k in 0..<ch { out[k] += pixel[k] }
            }
          }
          if !max { for k in 0..<ch { out[k] /= Float(h * w) } }
        }
      }
    }
    return NDArray(channelsLast: output)
  }
}
