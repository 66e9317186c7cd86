import ArgumentParser

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
        try await APIProcess.run(setup: setup, provision: provision, dev: false) { bases, _, _ in
            "notify api is listening on \(bases.api)"
                + (bases.ops == bases.api ? "\n" : " (ops endpoints on \(bases.ops))\n")
        }
    }
}
