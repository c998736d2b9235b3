import ArgumentParser

@main
struct AtrousCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "atrous",
    abstract: "Decode, convert and filter images; run and inspect small CNNs; export feature maps and hypercolumns.",
    discussion: """
      Exit status: 0 on success, 1 when a file failed, 64 on a usage error.
      Errors are printed to standard error as 'error: <file>: <reason>'.
      """,
    version: "0.1.0",
    subcommands: [
      InfoCommand.self, ConvertCommand.self, FilterCommand.self, RunCommand.self, InspectCommand.self, ModelsCommand.self,
      FeaturesCommand.self, HypercolumnsCommand.self,
    ]
  )
}
