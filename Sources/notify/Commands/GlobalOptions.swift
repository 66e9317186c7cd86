import ArgumentParser

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "JSON config file (or NOTIFY_CONFIG_FILE); environment variables override it.")
    var config: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (or NOTIFY_LOG_LEVEL).")
    var logLevel: String?
}
