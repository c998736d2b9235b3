import AtrousCore
import AtrousIO
import AtrousNN
import AtrousONNX
import FoundationEssentials
import _CModels

/// A model ready to run, with how images are prepared for it.
public struct LoadedModel: Sendable {
  /// The built-in name, or the file it came from.
  public var name: String
  public var graph: Graph
  /// The preprocessing the model expects (default 0-1 RGB for a file).
  public var preprocessing: ImagePreprocessing
  /// The preprocessing preset's name, if the model has one.
  public var preset: String?
  /// Layers used when none are asked for: a built-in model's feature
  /// maps, or a file's graph outputs.
  public var defaultLayers: [String]
  /// What `--layers all` means where the graph's own nodes are not layers
  /// a user would name (the built-in filter bank, built from padding and
  /// separable passes): its named maps. Nil: every feature map of the
  /// graph.
  public var namedLayers: [String]? = nil
  /// The ONNX file the graph was read from; nil for a built-in model
  /// (built in code, or bundled in the binary).
  public var file: String? = nil

  /// The graph input an image feeds: the first that is not a constant.
  public var imageInput: Graph.Input? { graph.inputs.first { graph.initializers[$0.name] == nil } }

  /// Refuses a layer name that is no value of the graph, naming the
  /// nearest and listing the named layers (or the graph's nodes).
  /// - Throws: `HypercolumnError.unknownLayer`.
  public func check(layers: [String]) throws {
    let values = Set(graph.nodes.flatMap(\.outputs)).union(graph.inputs.map(\.name))
    for name in layers where !values.contains(name) {
      throw HypercolumnError.unknownLayer(name, known: namedLayers ?? graph.nodes.compactMap(\.outputs.first))
    }
  }
}

/// The models that need no file, and loading of any ONNX file.
public enum ModelCatalog {
  public struct Entry: Sendable {
    public var name: String
    public var summary: String
    public var preset: String
    /// Feature maps (N, C, H, W) that `features` and `hypercolumns` take
    /// when no layers are named; the graph's outputs when nil.
    public var layers: [String]? = nil
  }

  /// The built-in models; the first is the default.
  public static let entries: [Entry] = [
    Entry(name: "default", summary: "multi-scale filter bank (Gaussian, gradient magnitude, LoG, DoG, Hessian eigenvalues "
            + "at sigma 0.7, 1, 1.6, 3.5, 5) written as a CNN; gray input, any size", preset: "default"),
    Entry(name: "mnist", summary: "ONNX Model Zoo MNIST CNN (opset 8): 28x28 gray digits to 10 class scores", preset: "mnist",
          layers: ["ReLU32_Output_0", "ReLU114_Output_0"]),
    Entry(name: "ppocr", summary: "PP-OCRv4 mobile text detector (PaddleOCR, opset 12): BGR page to a text probability map",
          preset: "ppocr"),
  ]

  /// The bytes of a bundled trained model (mnist or ppocr), which are
  /// compiled into the binary.
  public static func bundledBytes(_ name: String) -> Data? {
    var size = 0
    guard let bytes = atr_bundled_model(name, &size) else { return nil }
    return Data(bytes: bytes, count: size)
  }

  /// A built-in model by name, or an ONNX file by path.
  /// - Throws: `ModelCatalogError` for a name that is neither, `FileError`
  ///   or `ONNXError` for a file that cannot be read.
  public static func load(_ nameOrPath: String, threads: Int = Parallel.budget) throws -> LoadedModel {
    switch nameOrPath {
    case "default", "filterbank":
      let graph = FilterBankModel.graph()
      return LoadedModel(name: "default", graph: graph, preprocessing: .preset("default")!, preset: "default",
                         defaultLayers: graph.outputs, namedLayers: graph.outputs)
    case "mnist", "ppocr":
      let graph = try ONNXModel.decode(bundledBytes(nameOrPath)!)
      return LoadedModel(name: nameOrPath, graph: graph, preprocessing: .preset(nameOrPath)!, preset: nameOrPath,
                         defaultLayers: entries.first { $0.name == nameOrPath }?.layers ?? graph.outputs)
    default:
      if FileIO.isDirectory(nameOrPath) { throw ModelCatalogError.folder(path: nameOrPath) }
      guard FileIO.exists(nameOrPath) else {
        throw ModelCatalogError.notFound(name: nameOrPath, builtIn: entries.map(\.name))
      }
      let graph = try ONNXModel.load(nameOrPath, threads: threads)
      return LoadedModel(name: nameOrPath, graph: graph, preprocessing: ImagePreprocessing(), preset: nil,
                         defaultLayers: graph.outputs, file: nameOrPath)
    }
  }
}

/// Why `ModelCatalog.load` found no model.
public enum ModelCatalogError: Error, Equatable, CustomStringConvertible {
  /// Neither a built-in model's name nor an existing file.
  case notFound(name: String, builtIn: [String])
  /// A folder where an ONNX file was expected.
  case folder(path: String)

  public var description: String {
    switch self {
    case .notFound(let name, let builtIn):
      "no such file, and no built-in model of that name\(Spelling.suggestion(for: name, among: builtIn)); "
        + "the built-in models are \(builtIn.joined(separator: ", ")) (atrous models lists them)"
    case .folder:
      "is a folder; give an ONNX file or a built-in model's name"
    }
  }
}
