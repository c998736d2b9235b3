import AtrousCore
import AtrousFeatures
import AtrousNN
import AtrousONNX
import Testing

/// The checkerboard demo's models (Examples/checkerboard, Odena et al.
/// 2016): strided and transposed 3x3 convolutions leave a period-2 pattern
/// in the effective field and in the maps; pooling and resize-convolution
/// do not.
@Suite struct CheckerboardTests {
  static func graph(_ name: String) throws -> Graph { try ONNXModel.load("Examples/checkerboard/\(name).onnx") }

  /// The share of the values' energy in their period-2 checker component
  /// over `rows` x `columns` of an (H, W) array: (sum of v(x, y) (-1)^(x+y))^2
  /// against (sum of v)^2.
  static func checkerShare(_ values: [Float], width: Int, rows: Range<Int>, columns: Range<Int>) -> Double {
    var checker = 0.0, plain = 0.0
    for y in rows {
      for x in columns {
        let v = Double(values[y * width + x])
        checker += (x + y) % 2 == 0 ? v : -v
        plain += v
      }
    }
    return checker * checker / max(plain * plain, 1e-30)
  }

  @Test func effectiveFieldIsCheckeredOnlyWithStridedConvolutions() throws {
    var shares: [String: Double] = [:]
    for name in ["deconv", "resize"] {
      let graph = EffectiveReceptiveField.uniformWeights(try Self.graph(name))
      let field = try EffectiveReceptiveField.measure(
        graph: graph, layer: "enc2", inputs: EffectiveReceptiveField.randomInputs(shape: [1, 3, 32, 32], count: 2, seed: 1))
      let window = field.window
      shares[name] = Self.checkerShare(field.magnitude.scalars, width: 32, rows: window.rows, columns: window.columns)
    }
    #expect(shares["deconv"]! > 0.01 && shares["resize"]! < shares["deconv"]! / 20, "\(shares)")
  }

  /// A flat grey image: resize-convolution's output is flat away from the
  /// border; the transposed convolutions' alternates with the parity.
  @Test func mapsOfAFlatImageAreCheckeredOnlyAfterTransposedConvolutions() throws {
    let (h, w) = (32, 32)
    let input = NDArray(shape: [1, 3, h, w], floats: [Float](repeating: 0.5, count: 3 * h * w))
    var spread: [String: Double] = [:]
    for name in ["deconv", "resize"] {
      let out = try Executor(graph: try Self.graph(name)).run(["image": input], outputs: ["up2"])["up2"]!
      #expect(out.shape == [1, 3, h, w])
      let values = out.floatValues()
      // Channel 0, 8 pixels in from the border.
      let interior = (8..<(h - 8)).flatMap { y in (8..<(w - 8)).map { values[y * w + $0] } }
      let mean = interior.reduce(0, +) / Float(interior.count)
      spread[name] = Double(interior.map { abs($0 - mean) }.max()!) / max(Double(abs(mean)), 1e-6)
    }
    #expect(spread["deconv"]! > 0.05 && spread["resize"]! < 1e-4, "\(spread)")
  }
}
