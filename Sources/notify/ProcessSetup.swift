import Configuration
import Logging
import Metrics
import NotifyCore
import Prometheus

/// What every subcommand sets up once per process: configuration, logging and metrics.
struct ProcessSetup {
    let config: ConfigReader
    let logger: Logger
    let registry: PrometheusCollectorRegistry

    /// Reads the configuration and bootstraps swift-log (stderr) and swift-metrics (Prometheus).
    static func bootstrap(
        _ options: GlobalOptions, part: String, defaultLogLevel: String = "info"
    ) async throws -> ProcessSetup {
        OpenFileLimit.raise()  // one file per connection: the default soft limit is far too low for a server
        let config = try await NotifyConfigLoader.reader(filePath: options.config)
        let levelText = options.logLevel ?? config.string(forKey: "log.level", default: defaultLogLevel)
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw NotifyConfigError(
                "log level '\(levelText)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        var logger = Logger(label: "notify")
        logger[metadataKey: "notify.part"] = "\(part)"
        return ProcessSetup(config: config, logger: logger, registry: registry)
    }
}
