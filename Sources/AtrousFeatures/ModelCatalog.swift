import AtrousIO
import AtrousNN
import AtrousONNX
import Foundation

/// A model ready to run, with how images are prepared for it.
public struct LoadedModel: Sendable {
  /// The built-in name, or the file it came from.
  public var name: String
  public var graph: Graph
  /// The preprocessing the model expects (default 0-1 RGB for a file).
  public var preprocessing: ImagePreprocessing
  /// The preprocessing preset's name, if the model has one.
  public var preset: String?
  /// Layers used when none are asked for: the graph outputs.
  public var defaultLayers: [String] { graph.outputs }
}

/// The models that need no file, and loading of any ONNX file.
public enum ModelCatalog {
  public struct Entry: Sendable {
    public var name: String
    public var summary: String
    public var preset: String
  }

  /// The built-in models; the first is the default.
  public static let entries: [Entry] = [
    Entry(name: "default", summary: "multi-scale filter bank (Gaussian, gradient magnitude, LoG, DoG, Hessian eigenvalues "
            + "at sigma 0.7, 1, 1.6, 3.5, 5) written as a CNN; gray input, any size", preset: "default"),
    Entry(name: "mnist", summary: "ONNX Model Zoo MNIST CNN (opset 8): 28x28 gray digits to 10 class scores", preset: "mnist"),
    Entry(name: "ppocr", summary: "PP-OCRv4 mobile text detector (PaddleOCR, opset 12): BGR page to a text probability map",
          preset: "ppocr"),
  ]

  /// Folder of the bundled ONNX files.
  static var modelsFolder: String? { Bundle.module.resourcePath.map { $0 + "/Models" } }

  /// The file of a bundled trained model.
  public static func bundledFile(_ name: String) -> String? {
    let folder = ["mnist": "mnist-8", "ppocr": "ppocrv4-det"][name]
    return folder.flatMap { f in modelsFolder.map { "\($0)/\(f)/model.onnx" } }
  }

  /// A built-in model by name, or an ONNX file by path.
  /// - Throws: `FileError` or `ONNXError` for a file that cannot be read.
  public static func load(_ nameOrPath: String) throws -> LoadedModel {
    switch nameOrPath {
    case "default", "filterbank":
      return LoadedModel(name: "default", graph: FilterBankModel.graph(), preprocessing: .preset("default")!, preset: "default")
    case "mnist", "ppocr":
      guard let file = bundledFile(nameOrPath), FileIO.exists(file) else {
        throw FileError.cannotRead(path: nameOrPath, reason: "the bundled model file is missing from the installation")
      }
      return LoadedModel(name: nameOrPath, graph: try ONNXModel.load(file), preprocessing: .preset(nameOrPath)!,
                         preset: nameOrPath)
    default:
      return LoadedModel(name: nameOrPath, graph: try ONNXModel.load(nameOrPath), preprocessing: ImagePreprocessing(),
                         preset: nil)
    }
  }
}
