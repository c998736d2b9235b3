import AtrousFeatures
import AtrousIO
import AtrousNN
import AtrousONNX
import AtrousTestSupport
import Foundation
import Testing

/// Real architectures users bring (Tests/Fixtures/model-corpus, made by
/// Scripts/export-model-corpus.py): ResNet, MobileNetV2 and V3, EfficientNet,
/// RegNet, ShuffleNetV2, SqueezeNet, DenseNet, GoogLeNet, ConvNeXt, MnasNet,
/// a U-Net, LR-ASPP, a YOLOX-style detector and PP-OCR's trained direction
/// classifier. Each must give ONNX Runtime's outputs on the stored input
/// (rtol 1e-3, atol 1e-4 of each output's range), give every layer a
/// receptive field, and export hypercolumns of two of its spatial layers.
@Suite struct ModelCorpusTests {
  struct Model: Sendable, CustomTestStringConvertible {
    var name: String
    var input: String
    var outputs: [String]
    var layers: [String]
    var testDescription: String { name }
  }

  static let folder = Fixtures.path("model-corpus")

  static let models: [Model] = {
    Fixtures.indexRows(folder, key: "models").compactMap { row in
      guard let name = row["name"] as? String, let input = row["input"] as? String,
        let outputs = row["outputs"] as? [String], let layers = row["layers"] as? [String]
      else { return nil }
      return Model(name: name, input: input, outputs: outputs, layers: layers)
    }
  }()

  @Test func corpusHasEveryFamily() {
    let names = Set(Self.models.map(\.name))
    #expect(names.count >= 15, "\(names.sorted())")
    #expect(Self.models.allSatisfy { $0.layers.count == 2 })
  }

  /// A corpus model's graph and its stored input.
  static func load(_ m: Model) throws -> (Graph, NDArray) {
    let folder = "\(Self.folder)/\(m.name)"
    return (try ONNXModel.load(folder + "/model.onnx"), NDArray(try NPY.read(folder + "/input.npy")))
  }

  @Test(arguments: models)
  func matchesOnnxRuntime(_ m: Model) throws {
    let (graph, input) = try Self.load(m)
    let folder = "\(Self.folder)/\(m.name)"
    let outputs = try Executor(graph: graph, threads: 2).run([m.input: input])
    for (k, name) in m.outputs.enumerated() {
      let expected = NDArray(try NPY.read("\(folder)/output_\(k).npy"))
      let actual = try #require(outputs[name])
      #expect(actual.shape == expected.shape && actual.dtype == expected.dtype, "\(name)")
      let values = expected.floatValues()
      let range = (values.max() ?? 0) - (values.min() ?? 0)
      let check = closeness(actual.floatValues(), values, rtol: 1e-3, atol: 1e-4 * Swift.max(range, 1e-6))
      #expect(check.isClose, "\(name): \(check)")
    }
  }

  /// Shape-only traces pass values through the ops that keep their
  /// input's shape and give costly ops placeholder outputs; every layer's
  /// traced shape must still be the one a real run gives it.
  @Test(arguments: models)
  func tracedShapesMatchARealRun(_ m: Model) throws {
    let (graph, input) = try Self.load(m)
    let summary = try NetworkSummary(graph: graph, inputShapes: [m.input: input.shape])
    let values = try Executor(graph: graph, optimize: false).run([m.input: input], outputs: summary.layers.map(\.name))
    for layer in summary.layers {
      #expect(values[layer.name]?.shape == layer.outputShape, "\(layer.name) (\(layer.op))")
    }
  }

  @Test(arguments: models)
  func everyLayerHasAReceptiveFieldAndHypercolumnsExport(_ m: Model) throws {
    let (graph, input) = try Self.load(m)
    let summary = try NetworkSummary(graph: graph, inputShapes: [m.input: input.shape])
    #expect(summary.layers.count >= graph.nodes.count)
    #expect(summary.layers.allSatisfy { $0.receptiveField.size.count == 2 && $0.receptiveField.size.allSatisfy { $0 >= 1 } })
    let extractor = try HypercolumnExtractor(graph: graph, layers: m.layers)
    let plan = try extractor.plan(height: input.shape[2], width: input.shape[3], channels: input.shape[1])
    let path = Fixtures.scratchFolder() + "/hc.npy"
    try extractor.export(input, plan: plan, to: path)
    let exported = try NPY.read(path)
    #expect(exported.shape.prefix(2) == [input.shape[2], input.shape[3]][...])

    // Where every op feeding the layers is described as spatially local,
    // tiles must give the whole image's hypercolumns (with the input's
    // height and width left free, as an export with dynamic axes has them).
    var options = HypercolumnOptions()
    options.tile = 32
    var free = graph
    free.inputs = graph.inputs.map { declared in
      var input = declared
      if input.shape.count == 4 { input.shape[2] = nil; input.shape[3] = nil }
      return input
    }
    let tiling = try HypercolumnExtractor(graph: free, layers: m.layers, options: options)
    do {
      let tiled = try tiling.plan(height: input.shape[2], width: input.shape[3], channels: input.shape[1])
      #expect(tiled.tiles.count > 1)
      try tiling.export(input, plan: tiled, to: path)
      let check = closeness(try NPY.read(path).tensor().scalars, exported.tensor().scalars, rtol: 1e-4, atol: 1e-4)
      #expect(check.isClose, "\(check)")
    } catch HypercolumnError.notTileable, HypercolumnError.fixedInputSize {
      // A layer fed by an op that reduces or reorders across the image, or
      // a model exported for one input size.
    }
  }
}
