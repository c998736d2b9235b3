import ArgumentParser

@main
struct AtrousCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "atrous",
    abstract: "Decode, convert and filter images, and run and inspect small CNNs.",
    discussion: """
      Exit status: 0 on success, 1 when a file failed, 64 on a usage error.
      Errors are printed to standard error as 'error: <file>: <reason>'.
      """,
    version: "0.1.0",
    subcommands: [InfoCommand.self, ConvertCommand.self, FilterCommand.self, RunCommand.self, InspectCommand.self]
  )
}
