import ArgumentParser

/// Says clearly that a part is not built yet, instead of pretending to run.
private func notYet(_ part: String) throws -> Never {
    print("notify \(part): this part is not available yet in this version; run `notify dev` for what exists.")
    throw ExitCode(2)
}

struct PlexerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plexer", abstract: "Run the WebSocket multiplexer.")
    @OptionGroup var options: GlobalOptions
    func run() async throws { try notYet("plexer") }
}
