import ArgumentParser
import Configuration

/// `notify api`: the HTTP API for backends and apps, against the configured Redis.
struct APICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Run the notification HTTP API (needs NOTIFY_REDIS_URL, API keys and JWT settings).")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let setup = try await ProcessSetup.bootstrap(self.options, part: "api")
        let provision = try await RedisProvision.resolve(
            config: setup.config, startLocalIfUnset: false, logger: setup.logger)
        defer { provision.stop() }
        // `plexer.enabled`: the same process also serves the Plexer's WebSockets (as `notify plexer` would).
        let withPlexer = setup.config.bool(forKey: "plexer.enabled", default: false)
        try await APIProcess.run(setup: setup, provision: provision, dev: false, withPlexer: withPlexer) {
            bases, _, _ in
            "notify api is listening on \(bases.api)"
                + (bases.ops == bases.api ? "" : " (ops endpoints on \(bases.ops))")
                + (bases.plexer.map { ", Plexer on \($0)" } ?? "") + "\n"
        }
    }
}
