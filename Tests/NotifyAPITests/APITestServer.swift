import AsyncHTTPClient
import DelayQueue
import Foundation
import Hummingbird
import JWTKit
import Logging
import NIOCore
import NIOHTTP1
import NotifyAPI
import NotifyCore
import NotifyTestSupport
import RedisClient
import ServiceLifecycle

/// A running API (real HTTP on a loopback port, real Redis, the live hub's subscriber) and what tests need to
/// call it: keys, user tokens, an HTTP client.
struct APITestServer: Sendable {
    static let hs256Secret = TestUserToken.hs256Secret
    static let issuer = TestUserToken.issuer
    static let audience = TestUserToken.audience

    let baseURL: String
    let apiKey: String
    let adminKey: String
    let client: RedisClient
    let server: LocalRedisServer
    let queue: DelayQueue
    let clock: ManualQueueClock
    let keys: UserKeys
    let subscriber: RedisSubscriber
    /// Starts the graceful shutdown of the API (as SIGTERM would).
    let shutdown: @Sendable () async -> Void

    /// An HS256 user token, valid for an hour unless the claims say otherwise.
    func token(
        for user: String, issuer: String = Self.issuer, audience: String = Self.audience,
        expiresIn seconds: Double = 3_600, secret: String = Self.hs256Secret
    ) async throws -> String {
        try await TestUserToken.make(
            for: user, issuer: issuer, audience: audience, expiresIn: seconds, secret: secret)
    }

    /// Sends one request and collects the answer.
    func send(
        _ method: HTTPMethod, _ path: String, bearer: String? = nil, json: String? = nil,
        headers extra: [(String, String)] = []
    ) async throws -> TestResponse {
        var request = HTTPClientRequest(url: self.baseURL + path)
        request.method = method
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        if let json {
            if !extra.contains(where: { $0.0.lowercased() == "content-type" }) {
                request.headers.add(name: "Content-Type", value: "application/json")
            }
            request.body = .bytes(ByteBuffer(string: json))
        }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 16 << 20)
        return TestResponse(status: Int(response.status.code), headers: response.headers, body: String(buffer: body))
    }

    /// Ingests one notification as the backend; returns the parsed answer.
    func notify(_ json: String) async throws -> [String: Any] {
        let response = try await self.send(.POST, "/v1/notifications", bearer: self.apiKey, json: json)
        guard response.status == 202 else { throw TestFailure("ingest answered \(response.status): \(response.body)") }
        return try response.object()
    }

    /// Ingests one notification and returns the event id of its first recipient.
    func notifyEventID(_ json: String = #"{"recipients":["alice"],"type":"message","push":null}"#) async throws
        -> String
    {
        let answer = try await self.notify(json)
        guard let id = (answer["recipients"] as? [[String: Any]])?.first?["event_id"] as? String else {
            throw TestFailure("ingest answered no event id: \(answer)")
        }
        return id
    }
}

struct TestResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: String

    func object() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(self.body.utf8)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(self.body)")
        }
        return object
    }

    /// The `type` of a problem answer, checked to be problem+json.
    var problemType: String? {
        guard self.headers.first(name: "Content-Type") == "application/problem+json" else { return nil }
        return (try? self.object())?["type"] as? String
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

typealias TestClaims = TestUserToken.Claims

/// Runs `body` against a fresh API on a loopback port, stopped afterwards.
func withAPIServer<T: Sendable>(
    api: APIConfiguration = APIConfiguration(),
    ingest: IngestConfiguration = IngestConfiguration(),
    tokens: UserTokenConfiguration = UserTokenConfiguration(
        issuer: APITestServer.issuer, audience: APITestServer.audience, hs256Secret: APITestServer.hs256Secret),
    subscriberReconnectDelayMs: Int = 10,
    streamHandler: Bool = true,
    _ body: @Sendable (APITestServer) async throws -> T
) async throws -> T {
    try await withRedisClient { client, server in
        let logger = testLogger("api")
        let clock = ManualQueueClock()
        let shards = ShardMap(count: 8)
        let queue = DelayQueue(client: client, shards: shards, clock: .manual(clock))
        let keys = UserKeys(shards: shards)
        let subscriber = RedisSubscriber(
            configuration: RedisClientConfiguration(
                url: server.url, acquireTimeoutMs: 5_000, reconnectInitialDelayMs: subscriberReconnectDelayMs,
                reconnectMaxDelayMs: max(100, subscriberReconnectDelayMs)),
            logger: logger)
        let inbox = Inbox(client: client, keys: keys)
        let hub = LiveHub(subscriber: subscriber, keys: keys, bufferLimit: api.streamBufferEvents)
        let backend = APIKeyVerifier.generate(name: "backend")
        let admin = APIKeyVerifier.generate(name: "ops")
        let apiServer = APIServer(
            ingestor: Ingestor(client: client, queue: queue, keys: keys, configuration: ingest),
            inbox: inbox, feed: InboxFeed(hub: hub, inbox: inbox), queue: queue,
            devices: DeviceStore(client: client, keys: keys),
            preferences: PreferenceStore(
                client: client, keys: keys, now: { Date(timeIntervalSince1970: Double(clock.nowMs) / 1000) }),
            backendKeys: try APIKeyVerifier(entries: [backend.entry]),
            adminKeys: try APIKeyVerifier(entries: [admin.entry]),
            userTokens: UserTokenVerifier(configuration: tokens, logger: logger), configuration: api)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: apiServer.makeRouter(),
            // Without the handler, the router's own stream route serves /v1/stream.
            server: streamHandler ? apiServer.httpServer(logger: logger) : .http1(),
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: logger)
        return try await withRunningServices(
            [subscriber, app, hub.ticker], ports: ports, portContinuation: portContinuation, logger: logger
        ) { port, shutdown in
            try await body(
                APITestServer(
                    baseURL: "http://127.0.0.1:\(port)", apiKey: backend.key, adminKey: admin.key, client: client,
                    server: server, queue: queue, clock: clock, keys: keys, subscriber: subscriber, shutdown: shutdown))
        }
    }
}
