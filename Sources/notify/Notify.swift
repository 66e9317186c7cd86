import ArgumentParser

/// The one `notify` binary: every part of the platform is a subcommand.
@main
struct Notify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Notification and push delivery platform for chat products.",
        subcommands: [
            DevCommand.self, APICommand.self, WorkerCommand.self, PlexerCommand.self, QueueCommand.self,
            BenchCommand.self,
        ]
    )
}
