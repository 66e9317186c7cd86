import Configuration
import DelayQueue
import Foundation
import Hummingbird
import NotifyAPI
import NotifyCore
import PushWorker
import RedisClient
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The HTTP API (with the ops endpoints) and its services, for `notify api`, `notify dev` and `notify bench ingest`.
struct APIProcess {
    let redis: RedisClient
    let assembly: APIAssembly
    let router: Router<APIRequestContext>
    let ops: OpsRoutes
    let trimmer: QueueTrimmer
    /// The push worker `notify dev` runs beside the API.
    let worker: PushWorkerService?
    let setup: ProcessSetup

    static func prepare(
        setup: ProcessSetup, provision: RedisProvision, dev: Bool, userTokens: UserTokenConfiguration? = nil,
        withWorker: Bool = false
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
        let subscriber = assembly.subscriber
        let worker =
            withWorker
            ? try await PushWorkerService.make(
                queue: queue, subscriber: subscriber,
                configuration: PushWorkerConfiguration(config: setup.config.scoped(to: "push"), dev: dev),
                logger: logger)
            : nil
        let ops = OpsRoutes(registry: setup.registry) {
            ReadinessReport(checks: [
                await ReadinessReport.redis(redis), await ReadinessReport.delayQueue(queue),
                ReadinessReport.subscriber(subscriber),
            ])
        }
        return APIProcess(
            redis: redis, assembly: assembly, router: router, ops: ops,
            trimmer: QueueTrimmer(queue: queue, logger: logger), worker: worker, setup: setup)
    }

    /// The services in dependency order (Redis first, the HTTP servers and the live ticker last), so a graceful shutdown stops taking
    /// traffic before it closes Redis. With `http.opsPort` set, `/metrics`, `/healthz` and `/readyz` get a listener
    /// of their own (an internal network) and leave the API's; `onListening` gets the API's and the ops base URLs
    /// once both listen.
    func serviceGroup(
        http: HTTPListenConfiguration, signals: [UnixSignal],
        onListening: @escaping @Sendable (_ api: String, _ ops: String) -> Void
    ) -> ServiceGroup {
        let bases = ListeningURLs(onBoth: onListening)
        let listening = { @Sendable (api: String?, ops: String?) in bases.set(api: api, ops: ops) }
        var services: [any Service] = [self.redis, self.assembly.subscriber, self.trimmer]
        if let worker = self.worker { services.append(worker) }
        if let opsPort = http.opsPort {
            let router = Router()
            self.ops.register(on: router)
            services.append(
                Application(
                    router: router,
                    configuration: ApplicationConfiguration(
                        address: .hostname(http.host, port: opsPort), serverName: "notify-ops"),
                    onServerRunning: { channel in
                        listening(nil, "http://\(http.host):\(channel.localAddress?.port ?? opsPort)")
                    },
                    logger: self.setup.logger))
        } else {
            self.ops.register(on: self.router)
        }
        services.append(
            Application(
                router: self.router,
                server: self.assembly.server.httpServer(logger: self.setup.logger),
                configuration: ApplicationConfiguration(
                    address: .hostname(http.host, port: http.port), serverName: "notify"),
                onServerRunning: { channel in
                    let base = "http://\(http.host):\(channel.localAddress?.port ?? http.port)"
                    listening(base, http.opsPort == nil ? base : nil)
                },
                logger: self.setup.logger))
        // After the servers: on shutdown it goes first and ends the open streams, so the servers drain at once.
        services.append(self.assembly.ticker)
        return ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: signals, logger: self.setup.logger))
    }

    /// Runs until SIGTERM or SIGINT; `banner` gets the base URL and any development credentials, and returns what
    /// to print once listening.
    static func run(
        setup: ProcessSetup, provision: RedisProvision, dev: Bool, withWorker: Bool = false,
        banner:
            @escaping @Sendable (_ api: String, _ ops: String, APIAssembly.DevCredentials?, PushWorkerService?) ->
            String
    ) async throws {
        let process = try await Self.prepare(setup: setup, provision: provision, dev: dev, withWorker: withWorker)
        let credentials = process.assembly.devCredentials
        let worker = process.worker
        let http = try HTTPListenConfiguration(config: setup.config.scoped(to: "http"))
        try await process.serviceGroup(http: http, signals: [.sigterm, .sigint]) { api, ops in
            // Unbuffered, so the URLs show at once even when stdout is a pipe.
            FileHandle.standardOutput.write(Data(banner(api, ops, credentials, worker).utf8))
        }.run()
    }
}

/// Gathers the API's and the ops listener's base URLs as each server starts, and reports both once known.
private final class ListeningURLs: Sendable {
    private let urls = Mutex<(api: String?, ops: String?)>((nil, nil))
    private let onBoth: @Sendable (String, String) -> Void

    init(onBoth: @escaping @Sendable (String, String) -> Void) {
        self.onBoth = onBoth
    }

    func set(api: String?, ops: String?) {
        let both = self.urls.withLock { urls -> (String, String)? in
            urls.api = api ?? urls.api
            urls.ops = ops ?? urls.ops
            guard let api = urls.api, let ops = urls.ops else { return nil }
            return (api, ops)
        }
        if let both { self.onBoth(both.0, both.1) }
    }
}
