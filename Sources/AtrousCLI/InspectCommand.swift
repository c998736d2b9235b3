import ArgumentParser
import AtrousFeatures
import AtrousIO
import AtrousNN
import AtrousONNX

struct InspectCommand: ParsableCommand, MemoryBudgeted {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract: "Print each layer's output shape, parameters, MACs and receptive field.",
    discussion: """
      One row per node, named by its first output (the name --outputs and
      hypercolumn layers take). Receptive fields are in input pixels per axis
      (height, width): size, jump between neighbouring features, and start,
      the centre of the first feature's field (pixel centres at 0.5).

      EXAMPLES
        atrous inspect model.onnx
        atrous inspect vgg.onnx --input-size 224x224 --json
        atrous inspect model.onnx --at conv5 3 3
      """
  )

  @Argument(help: "An ONNX model file, or a built-in model: default, mnist or ppocr.")
  var model: String

  @Option(name: .customLong("input-size"), help: ArgumentHelp("Input height and width, for models whose size is not fixed.", valueName: "HxW"))
  var inputSize: String?

  @Flag(help: "Print one JSON object instead of a table.")
  var json = false

  @Option(parsing: .upToNextOption, help: ArgumentHelp("Print the input region one feature sees: LAYER X Y.", valueName: "layer x y"))
  var at: [String] = []

  @OptionGroup var memoryBudget: MemoryOptions

  func validate() throws {
    if let inputSize { try ImagePreprocessingOptions.checkSize(inputSize, option: "--input-size") }
    if !at.isEmpty && (at.count != 3 || Int(at[1]) == nil || Int(at[2]) == nil) {
      throw ValidationError("--at takes a layer name and two whole numbers: --at LAYER X Y")
    }
  }

  func run() throws {
    let summary: NetworkSummary
    var shapes: [String: [Int]] = [:]
    do {
      let graph = try ModelCatalog.load(model).graph
      let size = inputSize.flatMap(ImagePreprocessingOptions.parseSize)
      for input in graph.inputs where graph.initializers[input.name] == nil {
        var shape = input.shape
        if let size, shape.count == 4 {
          shape[2] = size.height
          shape[3] = size.width
          if shape[0] == nil { shape[0] = 1 }
        }
        guard shape.allSatisfy({ $0 != nil }) else {
          throw NNError.badGraphInput(name: input.name, reason: "its shape \(shape.map { $0.map(String.init) ?? "?" }) is not fixed; give --input-size HxW")
        }
        shapes[input.name] = shape.map { $0! }
      }
      summary = try NetworkSummary(graph: graph, inputShapes: shapes)
    } catch {
      Reporting.fail(error, file: model)
      throw ExitCode.fileFailed
    }
    if !at.isEmpty {
      guard let layer = summary.layers.first(where: { $0.name == at[0] || $0.node == at[0] }) else {
        Reporting.printError("error: \(model): no layer named '\(at[0])'")
        throw ExitCode.fileFailed
      }
      let (x, y) = (Int(at[1])!, Int(at[2])!)
      let shape = layer.outputShape
      if shape.count == 4 && (x < 0 || y < 0 || x >= shape[3] || y >= shape[2]) {
        Reporting.printError("error: \(model): feature (\(x), \(y)) is outside \(layer.name)'s \(shape[3])x\(shape[2]) map")
        throw ExitCode.fileFailed
      }
      let region = layer.receptiveField.region(x: x, y: y)
      // The field reaches past the image where padding was read; say so
      // when it takes in every pixel of it.
      let image = shapes.values.first { $0.count == 4 }
      let whole = image.map { region.box.0 <= 0 && region.box.1 <= 0 && region.box.2 >= Double($0[3]) && region.box.3 >= Double($0[2]) }
        ?? false
      if json {
        let object: JSONValue = ["layer": JSONValue(layer.name), "x": JSONValue(x), "y": JSONValue(y),
                                 "centre": JSONValue([region.centre.x, region.centre.y]),
                                 "box": JSONValue([region.box.0, region.box.1, region.box.2, region.box.3]),
                                 "whole_input": JSONValue(whole),
                                 "size": JSONValue([layer.receptiveField.size[1], layer.receptiveField.size[0]])]
        print(try object.text())
      } else {
        print("\(layer.name) feature (\(x), \(y)): centre (\(fmt(region.centre.x)), \(fmt(region.centre.y))), "
              + "receptive field \(fmt(layer.receptiveField.size[1]))x\(fmt(layer.receptiveField.size[0])), "
              + "box (x0, y0, x1, y1) = (\(fmt(region.box.0)), \(fmt(region.box.1)), \(fmt(region.box.2)), \(fmt(region.box.3)))"
              + (whole ? ": the whole \(image![3])x\(image![2]) input" : ""))
      }
      return
    }
    if json {
      let layers: [JSONValue] = summary.layers.map { layer in
        ["name": JSONValue(layer.name), "node": JSONValue(layer.node), "op": JSONValue(layer.op),
         "output_shape": JSONValue(layer.outputShape), "params": JSONValue(layer.parameters), "macs": JSONValue(layer.macs),
         "receptive_field": ["size": JSONValue(layer.receptiveField.size), "jump": JSONValue(layer.receptiveField.jump),
                             "start": JSONValue(layer.receptiveField.start)]]
      }
      let object: JSONValue = ["layers": .array(layers), "total_params": JSONValue(summary.totalParameters),
                               "total_macs": JSONValue(summary.totalMACs),
                               "peak_activation_bytes": JSONValue(summary.peakActivationBytes)]
      print(try object.text())
      return
    }
    var rows = [["layer", "op", "output shape", "params", "MACs", "RF size", "jump", "start"]]
    for layer in summary.layers {
      let rf = layer.receptiveField
      rows.append([layer.name, layer.op, "(" + layer.outputShape.map(String.init).joined(separator: ", ") + ")",
                   String(layer.parameters), String(layer.macs), "\(fmt(rf.size[0]))x\(fmt(rf.size[1]))",
                   "\(fmt(rf.jump[0]))x\(fmt(rf.jump[1]))", "\(fmt(rf.start[0])),\(fmt(rf.start[1]))"])
    }
    let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max()! }
    for row in rows {
      print(row.enumerated().map { c, cell in c >= 3 && c <= 4 ? String(repeating: " ", count: widths[c] - cell.count) + cell
        : cell + String(repeating: " ", count: widths[c] - cell.count) }.joined(separator: "  "))
    }
    print("total: \(summary.totalParameters) parameters, \(summary.totalMACs) MACs, "
          + "peak activations \(String(printf: "%.1f", Double(summary.peakActivationBytes) / 1_048_576)) MiB")
  }
}
