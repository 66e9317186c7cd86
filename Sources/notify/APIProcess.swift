import Configuration
import DelayQueue
import Foundation
import Hummingbird
import NotifyAPI
import NotifyCore
import Plexer
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
    /// The Plexer `notify dev` runs beside the API, and where it listens.
    let plexer: (services: PlexerServices, listen: HTTPListenConfiguration)?
    let setup: ProcessSetup

    static func prepare(
        setup: ProcessSetup, provision: RedisProvision, dev: Bool, userTokens: UserTokenConfiguration? = nil,
        withWorker: Bool = false, withPlexer: Bool = false
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
        // The listen settings are read before the upstreams' HTTP client exists (one dropped unshut, by a later
        // setting's error, stops a debug build before the error is printed).
        let plexerListen = withPlexer ? try PlexerListen.configuration(setup.config) : nil
        let plexer = try plexerListen.map { listen in
            (
                services: PlexerServices(
                    feed: assembly.server.feed, verifier: assembly.server.userTokens,
                    acknowledger: assembly.server.acknowledger,
                    configuration: try PlexerConfiguration(config: setup.config.scoped(to: "plexer")),
                    upstreams: try HTTPUpstreams(config: setup.config.scoped(to: "plexer"), logger: logger),
                    logger: logger),
                listen: listen
            )
        }
        return APIProcess(
            redis: redis, assembly: assembly, router: router, ops: ops,
            trimmer: QueueTrimmer(queue: queue, logger: logger), worker: worker, plexer: plexer, setup: setup)
    }

    /// The services in dependency order (Redis first, the HTTP servers and the live ticker last), so a graceful
    /// shutdown stops taking traffic before it closes Redis. With `http.opsPort` set, `/metrics`, `/healthz` and
    /// `/readyz` get a listener of their own (an internal network) and leave the API's; `onListening` gets the
    /// base URLs once every listener listens.
    func serviceGroup(
        http: HTTPListenConfiguration, signals: [UnixSignal],
        onListening: @escaping @Sendable (ListeningURLs.Bases) -> Void
    ) -> ServiceGroup {
        let bases = ListeningURLs(expectPlexer: self.plexer != nil, onAll: onListening)
        let listening = { @Sendable (api: String?, ops: String?, plexer: String?) in
            bases.set(api: api, ops: ops, plexer: plexer)
        }
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
                        listening(nil, "http://\(http.host):\(channel.localAddress?.port ?? opsPort)", nil)
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
                    listening(base, http.opsPort == nil ? base : nil, nil)
                },
                logger: self.setup.logger))
        if let plexer = self.plexer {
            services.append(
                PlexerServer(services: plexer.services, host: plexer.listen.host, port: plexer.listen.port) { port in
                    listening(nil, nil, "ws://\(plexer.listen.host):\(port)\(PlexerServer.path)")
                })
        }
        // After the servers: on shutdown it goes first and ends the open streams, so the servers drain at once.
        services.append(self.assembly.ticker)
        return ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: signals, logger: self.setup.logger))
    }

    /// Runs until SIGTERM or SIGINT; `banner` gets the base URLs and any development credentials, and returns what
    /// to print once listening.
    static func run(
        setup: ProcessSetup, provision: RedisProvision, dev: Bool, withWorker: Bool = false, withPlexer: Bool = false,
        banner: @escaping @Sendable (ListeningURLs.Bases, APIAssembly.DevCredentials?, PushWorkerService?) -> String
    ) async throws {
        let process = try await Self.prepare(
            setup: setup, provision: provision, dev: dev, withWorker: withWorker, withPlexer: withPlexer)
        let credentials = process.assembly.devCredentials
        let worker = process.worker
        let http = try HTTPListenConfiguration(config: setup.config.scoped(to: "http"))
        try await process.serviceGroup(http: http, signals: [.sigterm, .sigint]) { bases in
            // Unbuffered, so the URLs show at once even when stdout is a pipe.
            FileHandle.standardOutput.write(Data(banner(bases, credentials, worker).utf8))
        }.run()
    }
}

/// Gathers the listeners' base URLs as each server starts, and reports them once all are known.
final class ListeningURLs: Sendable {
    struct Bases: Sendable {
        var api: String
        var ops: String
        /// The Plexer's `ws://…/ws`, when this process runs one.
        var plexer: String?
    }

    private let urls = Mutex<(api: String?, ops: String?, plexer: String?)>((nil, nil, nil))
    private let expectPlexer: Bool
    private let onAll: @Sendable (Bases) -> Void

    init(expectPlexer: Bool, onAll: @escaping @Sendable (Bases) -> Void) {
        self.expectPlexer = expectPlexer
        self.onAll = onAll
    }

    func set(api: String?, ops: String?, plexer: String?) {
        let all = self.urls.withLock { urls -> Bases? in
            urls.api = api ?? urls.api
            urls.ops = ops ?? urls.ops
            urls.plexer = plexer ?? urls.plexer
            guard let api = urls.api, let ops = urls.ops, !self.expectPlexer || urls.plexer != nil else { return nil }
            return Bases(api: api, ops: ops, plexer: urls.plexer)
        }
        if let all { self.onAll(all) }
    }
}
