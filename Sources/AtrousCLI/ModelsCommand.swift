import ArgumentParser
import AtrousFeatures

struct ModelsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "models",
    abstract: "List the built-in models, usable wherever a model is taken.",
    discussion: """
      Any ONNX file works in their place; its image preprocessing then comes
      from the options.

      EXAMPLES
        atrous models
      """
  )

  func run() throws {
    for entry in ModelCatalog.entries {
      print("\(entry.name)\(entry.name == "default" ? " (default)" : "")")
      print("  \(entry.summary)")
      print("  preset: \(entry.preset)")
      if let model = try? ModelCatalog.load(entry.name) {
        print("  layers: \(model.defaultLayers.joined(separator: ", "))")
      }
    }
  }
}
