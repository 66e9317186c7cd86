import Configuration
import DelayQueue
import Foundation
import Logging
import NotifyAPI
import NotifyCore
import RedisClient

/// Builds the API from configuration, for `notify api` and `notify dev`.
struct APIAssembly {
    /// Development credentials `notify dev` made up because none were configured.
    struct DevCredentials {
        var backendKey: String?
        var adminKey: String?
        var tokens: [(user: String, token: String)]
    }

    let server: APIServer
    let subscriber: RedisSubscriber
    /// The live streams' heartbeat ticker: a service that must come after the HTTP servers (it ends the streams
    /// first on shutdown).
    let ticker: LiveTicker
    let devCredentials: DevCredentials?

    /// In `dev` mode, missing API keys and a missing JWT setup are made up (and printed); otherwise they are
    /// configuration errors: the API never runs open.
    static func make(
        config: ConfigReader, redis: RedisClient, redisConfiguration: RedisClientConfiguration, queue: DelayQueue,
        logger: Logger, dev: Bool, userTokens: UserTokenConfiguration? = nil
    ) async throws -> APIAssembly {
        var credentials = DevCredentials(tokens: [])
        var backendKeys = try APIKeyVerifier(config: config, key: "auth.apiKeys")
        if backendKeys.entries.isEmpty {
            guard dev else {
                throw NotifyConfigError("auth.apiKeys is empty: create a key with `notify keys generate --name NAME`")
            }
            let generated = APIKeyVerifier.generate(name: "dev")
            backendKeys = try APIKeyVerifier(entries: [generated.entry])
            credentials.backendKey = generated.key
        }
        var adminKeys = try APIKeyVerifier(config: config, key: "auth.adminKeys")
        if adminKeys.entries.isEmpty, dev {
            let generated = APIKeyVerifier.generate(name: "dev-admin")
            adminKeys = try APIKeyVerifier(entries: [generated.entry])
            credentials.adminKey = generated.key
        }
        var tokens = try userTokens ?? UserTokenConfiguration(config: config.scoped(to: "auth.jwt"))
        if !tokens.isConfigured {
            guard dev else {
                throw NotifyConfigError(
                    "no user token check is configured: set auth.jwt.jwksURL and auth.jwt.issuer (or, for development only, auth.jwt.hs256Secret)"
                )
            }
            tokens = UserTokenConfiguration(hs256Secret: Base64URL.random(byteCount: 32))
            for user in ["alice", "bob"] {
                credentials.tokens.append(
                    (user, try await DevTokenMinter.token(for: user, secret: tokens.hs256Secret!)))
            }
        }
        let keys = UserKeys(shards: queue.shards)
        var apiConfiguration = try APIConfiguration(config: config.scoped(to: "api"))
        // Registration refuses device URLs the workers would refuse: the same setting as theirs.
        apiConfiguration.egress = EgressPolicy(allowLoopback: config.bool(forKey: "push.allowLoopback", default: dev))
        let subscriber = RedisSubscriber(configuration: redisConfiguration, logger: logger)
        let inbox = Inbox(client: redis, keys: keys)
        let hub = LiveHub(subscriber: subscriber, keys: keys, bufferLimit: apiConfiguration.streamBufferEvents)
        let verifier = UserTokenVerifier(configuration: tokens, logger: logger)
        do {
            try await verifier.prepare()
        } catch {
            // The issuer may be down while we deploy: serve anyway (backends can send, tokens are refused) and
            // fetch its keys again when tokens arrive.
            logger.warning("the token issuer's keys are not reachable yet; tokens are refused until they are")
        }
        let server = APIServer(
            ingestor: Ingestor(
                client: redis, queue: queue, keys: keys,
                configuration: try IngestConfiguration(config: config.scoped(to: "ingest"))),
            inbox: inbox, feed: InboxFeed(hub: hub, inbox: inbox), queue: queue,
            devices: DeviceStore(client: redis, keys: keys), preferences: PreferenceStore(client: redis, keys: keys),
            backendKeys: backendKeys,
            adminKeys: adminKeys, userTokens: verifier, configuration: apiConfiguration)
        for script in Ingestor.scripts {
            try await redis.load(script)
        }
        let made = credentials.backendKey != nil || credentials.adminKey != nil || !credentials.tokens.isEmpty
        return APIAssembly(
            server: server, subscriber: subscriber, ticker: hub.ticker, devCredentials: made ? credentials : nil)
    }
}
