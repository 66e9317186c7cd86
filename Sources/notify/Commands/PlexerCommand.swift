import ArgumentParser
import Configuration
import DelayQueue
import Foundation
import Hummingbird
import Logging
import NotifyAPI
import NotifyCore
import Plexer
import RedisClient
import ServiceLifecycle
import UnixSignals

/// `notify plexer`: the WebSocket multiplexer alone. Stateless apart from its sockets: run as many as needed
/// behind a load balancer; every one serves every user.
struct PlexerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plexer",
        abstract: "Run the WebSocket multiplexer (needs NOTIFY_REDIS_URL and the auth.jwt.* settings).")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let setup = try await ProcessSetup.bootstrap(self.options, part: "plexer")
        let logger = setup.logger
        let config = setup.config
        let provision = try await RedisProvision.resolve(config: config, startLocalIfUnset: false, logger: logger)
        defer { provision.stop() }
        let redis = RedisClient(configuration: provision.configuration, logger: logger)
        let queue = DelayQueue(
            client: redis, configuration: DelayQueueConfiguration(config: config.scoped(to: "delayQueue")),
            shards: try ShardMap(config: config))
        try await queue.prepare()
        let tokens = try UserTokenConfiguration(config: config.scoped(to: "auth.jwt"))
        guard tokens.isConfigured else {
            throw NotifyConfigError(
                "no user token check is configured: set auth.jwt.jwksURL and auth.jwt.issuer (or, for development only, auth.jwt.hs256Secret)"
            )
        }
        let verifier = UserTokenVerifier(configuration: tokens, logger: logger)
        do {
            try await verifier.prepare()
        } catch {
            logger.warning("the token issuer's keys are not reachable yet; tokens are refused until they are")
        }
        let api = try APIConfiguration(config: config.scoped(to: "api"))
        // Every setting that can fail is read before the upstreams' HTTP client exists (one dropped unshut stops a
        // debug build before the error is printed).
        let listen = try PlexerListen.configuration(config)
        let http = try HTTPListenConfiguration(config: config.scoped(to: "http"))
        let keys = UserKeys(shards: queue.shards)
        let subscriber = RedisSubscriber(configuration: provision.configuration, logger: logger)
        let hub = LiveHub(subscriber: subscriber, keys: keys, bufferLimit: api.streamBufferEvents)
        let services = PlexerServices(
            feed: InboxFeed(hub: hub, inbox: Inbox(client: redis, keys: keys)), verifier: verifier,
            acknowledger: EventAcknowledger(queue: queue, maxIDs: api.maxAckIDs),
            configuration: try PlexerConfiguration(config: config.scoped(to: "plexer")),
            upstreams: try HTTPUpstreams(config: config.scoped(to: "plexer"), logger: logger),
            logger: logger)
        let router = Router()
        OpsRoutes(registry: setup.registry) {
            ReadinessReport(checks: [await ReadinessReport.redis(redis), ReadinessReport.subscriber(subscriber)])
        }.register(on: router)
        let opsPort = http.opsPort ?? http.port
        let ops = Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(http.host, port: opsPort), serverName: "notify-plexer"),
            logger: logger)
        let plexer = PlexerServer(services: services, host: listen.host, port: listen.port) { port in
            FileHandle.standardOutput.write(
                Data(
                    ("notify plexer is listening on ws://\(listen.host):\(port)\(PlexerServer.path) "
                        + "(ops endpoints on http://\(http.host):\(opsPort))\n").utf8))
        }
        // The ticker last: on shutdown it goes first and ends the live feeds, then the Plexer drains its sockets.
        try await ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [redis, subscriber, ops, plexer, hub.ticker], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger)
        ).run()
    }
}
