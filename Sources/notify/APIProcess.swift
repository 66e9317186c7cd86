import Configuration
import DelayQueue
import Foundation
import Hummingbird
import NotifyAPI
import NotifyCore
import RedisClient
import ServiceLifecycle
import UnixSignals

/// Runs the HTTP API (with the ops endpoints) and its services until SIGTERM or SIGINT.
enum APIProcess {
    /// `banner` gets the base URL and any development credentials, and returns what to print once listening.
    static func run(
        setup: ProcessSetup, provision: RedisProvision, dev: Bool,
        banner: @escaping @Sendable (String, APIAssembly.DevCredentials?) -> String
    ) async throws {
        let logger = setup.logger
        let redis = RedisClient(configuration: provision.configuration, logger: logger)
        let http = try HTTPListenConfiguration(config: setup.config.scoped(to: "http"))
        let queue = DelayQueue(
            client: redis, configuration: DelayQueueConfiguration(config: setup.config.scoped(to: "delayQueue")),
            shards: try ShardMap(config: setup.config))
        try await queue.prepare()
        let assembly = try await APIAssembly.make(
            config: setup.config, redis: redis, redisConfiguration: provision.configuration, queue: queue,
            logger: logger, dev: dev)

        let router = assembly.server.makeRouter()
        OpsRoutes(registry: setup.registry) {
            ReadinessReport(checks: [await ReadinessReport.redis(redis), await ReadinessReport.delayQueue(queue)])
        }.register(on: router)
        let credentials = assembly.devCredentials
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(http.host, port: http.port), serverName: "notify"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? http.port
                // Unbuffered, so the URLs show at once even when stdout is a pipe.
                FileHandle.standardOutput.write(Data(banner("http://\(http.host):\(port)", credentials).utf8))
            },
            logger: logger
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [redis, assembly.subscriber, app], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}
