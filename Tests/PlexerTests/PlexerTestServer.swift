import DelayQueue
import Foundation
import Logging
import NotifyAPI
import NotifyCore
import NotifyTestSupport
import Plexer
import RedisClient
import ServiceLifecycle

/// A running Plexer on a loopback port with real Redis, the live hub's subscriber and the ingest that feeds it.
struct PlexerTestServer: Sendable {
    let url: String
    let port: Int
    let client: RedisClient
    let queue: DelayQueue
    let ingestor: Ingestor
    let subscriber: RedisSubscriber
    /// The Redis every node of a test shares.
    let redisURL: RedisURL
    /// That Redis server, to stop and restart.
    let redis: LocalRedisServer
    let shutdown: @Sendable () async -> Void

    /// An HS256 user token, valid for an hour unless told otherwise.
    func token(for user: String, expiresIn seconds: Double = 3_600) async throws -> String {
        try await TestUserToken.make(for: user, expiresIn: seconds)
    }

    /// A driver connected as `user` (token in the query) that has received its `ready`.
    func connected(_ user: String) async throws -> WebSocketDriver {
        let ws = try WebSocketDriver()
        _ = try await ws.connect(self.url + "?access_token=\(try await self.token(for: user))")
        let ready = try await ws.receive()
        guard ready["ev"] as? String == "ready" else { throw DriverFailure("not ready: \(ready)") }
        return ws
    }

    /// Ingests one notification for `user` (with a push job, unless `push` is false); returns its event id.
    @discardableResult
    func notify(_ user: String, push: Bool = true, payload: JSONValue = .object([:])) async throws -> String {
        let result = try await self.ingestor.ingest(
            NotificationRequest(
                recipients: [user], type: .message, payload: payload, push: push ? PushOptions() : nil),
            sender: "backend")
        guard let id = result.recipients.first?.eventID else { throw DriverFailure("ingest gave no event id") }
        return id
    }
}

/// Runs `body` against a fresh Plexer, stopped (gracefully) afterwards.
func withPlexer<T: Sendable>(
    configuration: PlexerConfiguration = PlexerConfiguration(),
    routes: [UpstreamRoute] = [],
    upstreamCaFile: String? = nil,
    streamBufferEvents: Int = 512,
    _ body: @Sendable (PlexerTestServer) async throws -> T
) async throws -> T {
    try await withRedisClient { client, server in
        let logger = testLogger("plexer")
        let shards = ShardMap(count: 8)
        let queue = DelayQueue(client: client, shards: shards, clock: .manual(ManualQueueClock()))
        let keys = UserKeys(shards: shards)
        let subscriber = RedisSubscriber(
            configuration: RedisClientConfiguration(
                url: server.url, acquireTimeoutMs: 5_000, reconnectInitialDelayMs: 10, reconnectMaxDelayMs: 100),
            logger: logger)
        let inbox = Inbox(client: client, keys: keys)
        let hub = LiveHub(subscriber: subscriber, keys: keys, bufferLimit: streamBufferEvents)
        let tokens = UserTokenConfiguration(
            issuer: TestUserToken.issuer, audience: TestUserToken.audience, hs256Secret: TestUserToken.hs256Secret,
            leewaySeconds: 0)
        let services = PlexerServices(
            feed: InboxFeed(hub: hub, inbox: inbox),
            verifier: UserTokenVerifier(configuration: tokens, logger: logger),
            acknowledger: EventAcknowledger(queue: queue, maxIDs: 1_000), configuration: configuration,
            upstreams: HTTPUpstreams(routes: routes, caFile: upstreamCaFile), logger: logger)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let plexer = PlexerServer(services: services, host: "127.0.0.1", port: 0) { port in
            portContinuation.yield(port)
            portContinuation.finish()
        }
        return try await withRunningServices(
            [subscriber, plexer, hub.ticker], ports: ports, portContinuation: portContinuation, logger: logger
        ) { port, shutdown in
            try await body(
                PlexerTestServer(
                    url: "ws://127.0.0.1:\(port)/ws", port: port, client: client, queue: queue,
                    ingestor: Ingestor(
                        client: client, queue: queue, keys: keys,
                        configuration: IngestConfiguration(inboxMaxLength: 10_000)),
                    subscriber: subscriber, redisURL: server.url, redis: server, shutdown: shutdown))
        }
    }
}
