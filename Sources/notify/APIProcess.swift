import Configuration
import DelayQueue
import Foundation
import Hummingbird
import NotifyAPI
import NotifyCore
import RedisClient
import ServiceLifecycle
import UnixSignals

/// The HTTP API (with the ops endpoints) and its services, for `notify api`, `notify dev` and `notify bench ingest`.
struct APIProcess {
    let redis: RedisClient
    let assembly: APIAssembly
    let router: Router<APIRequestContext>
    let trimmer: QueueTrimmer
    let setup: ProcessSetup

    static func prepare(
        setup: ProcessSetup, provision: RedisProvision, dev: Bool, userTokens: UserTokenConfiguration? = nil
    ) async throws -> APIProcess {
        let logger = setup.logger
        let redis = RedisClient(configuration: provision.configuration, logger: logger)
        let queue = DelayQueue(
            client: redis, configuration: DelayQueueConfiguration(config: setup.config.scoped(to: "delayQueue")),
            shards: try ShardMap(config: setup.config))
        try await queue.prepare()
        let assembly = try await APIAssembly.make(
            config: setup.config, redis: redis, redisConfiguration: provision.configuration, queue: queue,
            logger: logger, dev: dev, userTokens: userTokens)
        let router = assembly.server.makeRouter()
        OpsRoutes(registry: setup.registry) {
            ReadinessReport(checks: [await ReadinessReport.redis(redis), await ReadinessReport.delayQueue(queue)])
        }.register(on: router)
        return APIProcess(
            redis: redis, assembly: assembly, router: router, trimmer: QueueTrimmer(queue: queue, logger: logger),
            setup: setup)
    }

    /// The services in dependency order (Redis first, the HTTP server last), so a graceful shutdown stops taking
    /// traffic before it closes Redis. `onListening` gets the base URL.
    func serviceGroup(
        http: HTTPListenConfiguration, signals: [UnixSignal], onListening: @escaping @Sendable (String) -> Void
    ) -> ServiceGroup {
        let app = Application(
            router: self.router,
            configuration: ApplicationConfiguration(
                address: .hostname(http.host, port: http.port), serverName: "notify"),
            onServerRunning: { channel in
                onListening("http://\(http.host):\(channel.localAddress?.port ?? http.port)")
            },
            logger: self.setup.logger
        )
        return ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [self.redis, self.assembly.subscriber, self.trimmer, app], gracefulShutdownSignals: signals,
                logger: self.setup.logger))
    }

    /// Runs until SIGTERM or SIGINT; `banner` gets the base URL and any development credentials, and returns what
    /// to print once listening.
    static func run(
        setup: ProcessSetup, provision: RedisProvision, dev: Bool,
        banner: @escaping @Sendable (String, APIAssembly.DevCredentials?) -> String
    ) async throws {
        let process = try await Self.prepare(setup: setup, provision: provision, dev: dev)
        let credentials = process.assembly.devCredentials
        let http = try HTTPListenConfiguration(config: setup.config.scoped(to: "http"))
        try await process.serviceGroup(http: http, signals: [.sigterm, .sigint]) { base in
            // Unbuffered, so the URLs show at once even when stdout is a pipe.
            FileHandle.standardOutput.write(Data(banner(base, credentials).utf8))
        }.run()
    }
}
