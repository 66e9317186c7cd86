import ArgumentParser
import Configuration
import DelayQueue
import Foundation
import Hummingbird
import Logging
import NotifyCore
import RedisClient
import ServiceLifecycle
import UnixSignals

/// `notify dev`: every part that exists, in one process, with a Redis of its own unless `NOTIFY_REDIS_URL` is set.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run every part in one process (starts its own redis-server unless NOTIFY_REDIS_URL is set)."
    )

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let setup = try await ProcessSetup.bootstrap(self.options, part: "dev")
        let logger = setup.logger
        let provision = try await RedisProvision.resolve(config: setup.config, startLocalIfUnset: true, logger: logger)
        defer { provision.stop() }
        let redis = RedisClient(configuration: provision.configuration, logger: logger)
        let http = try HTTPListenConfiguration(config: setup.config.scoped(to: "http"))
        let queue = DelayQueue(
            client: redis, configuration: DelayQueueConfiguration(config: setup.config.scoped(to: "delayQueue")),
            shards: try ShardMap(config: setup.config))
        try await queue.prepare()

        let router = Router()
        OpsRoutes(registry: setup.registry) {
            ReadinessReport(checks: [await ReadinessReport.redis(redis), await ReadinessReport.delayQueue(queue)])
        }.register(on: router)
        let redisURL = provision.configuration.url
        // `notify queue …` in another terminal finds the Redis we started without NOTIFY_REDIS_URL. A configured
        // URL is not written down: it may hold a password.
        if provision.localServer != nil {
            DevState.publish(redisURL: "\(redisURL)")
        }
        defer { if provision.localServer != nil { DevState.clear() } }
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(http.host, port: http.port), serverName: "notify"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? http.port
                let base = "http://\(http.host):\(port)"
                // Unbuffered, so the URLs show at once even when stdout is a pipe.
                FileHandle.standardOutput.write(
                    Data(
                        """
                        notify dev is running
                          ops:   \(base)/healthz  \(base)/readyz  \(base)/metrics
                          redis: \(redisURL)
                        Press Ctrl-C to stop.

                        """.utf8))
            },
            logger: logger
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [redis, app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
