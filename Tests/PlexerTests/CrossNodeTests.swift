import DelayQueue
import Foundation
import Hummingbird
import NotifyAPI
import NotifyCore
import NotifyTestSupport
import Plexer
import RedisClient
import Testing

@Suite("Plexer across nodes", .timeLimit(.minutes(2)))
struct CrossNodeTests {
    @Test("a user on two Plexers and on the API's SSE stream gets each event on every socket, once")
    func everySocketOnce() async throws {
        try await withPlexer { first in
            try await Self.withSecondNode(redisURL: first.redisURL) { secondURL, apiPort in
                let token = try await first.token(for: "alice")
                let onFirst = try await first.connected("alice")
                let onSecond = try WebSocketDriver()
                _ = try await onSecond.connect(secondURL + "?access_token=\(token)")
                _ = try await onSecond.receive()
                for ws in [onFirst, onSecond] {
                    try await ws.send(json: ["ch": "notify", "op": "resume", "id": 1])
                    #expect(try await ws.receive()["ok"] as? Bool == true)
                }
                let sse = try WebSocketDriver()
                let opened = try await sse.run(["op": "sse_open", "host": "127.0.0.1", "port": apiPort, "token": token])
                #expect(opened["status"] as? String == "HTTP/1.1 200 OK")
                var sent: [String] = []
                for _ in 0..<5 { sent.append(try await first.notify("alice", push: false)) }
                for ws in [onFirst, onSecond] {
                    var got: [String] = []
                    for _ in 0..<5 {
                        got.append(try #require((try await ws.receive()["event"] as? [String: Any])?["id"] as? String))
                    }
                    #expect(got == sent)
                    let extra = try await ws.run(["op": "recv", "timeout": 0.5])
                    #expect(extra["timeout"] as? Bool == true, "nothing twice: \(extra)")
                }
                var viaSSE: [String] = []
                for _ in 0..<5 { viaSSE.append(try #require(try await sse.run(["op": "sse_next"])["id"] as? String)) }
                #expect(viaSSE == sent)
            }
        }
    }

    /// A second Plexer and an API (for SSE) on the same Redis, each with its own pub/sub subscriber, as separate
    /// processes would have.
    static func withSecondNode(
        redisURL: RedisURL, _ body: @Sendable (_ plexerURL: String, _ apiPort: Int) async throws -> Void
    ) async throws {
        let logger = testLogger("node-b")
        let redis = RedisClientConfiguration(
            url: redisURL, acquireTimeoutMs: 5_000, reconnectInitialDelayMs: 10, reconnectMaxDelayMs: 100)
        let client = RedisClient(configuration: redis, logger: logger)
        let shards = ShardMap(count: 8)
        let keys = UserKeys(shards: shards)
        let queue = DelayQueue(client: client, shards: shards)
        let inbox = Inbox(client: client, keys: keys)
        let tokens = UserTokenConfiguration(
            issuer: TestUserToken.issuer, audience: TestUserToken.audience, hs256Secret: TestUserToken.hs256Secret)
        let verifier = UserTokenVerifier(configuration: tokens, logger: logger)
        let plexerSubscriber = RedisSubscriber(configuration: redis, logger: logger)
        let plexerHub = LiveHub(subscriber: plexerSubscriber, keys: keys)
        let apiSubscriber = RedisSubscriber(configuration: redis, logger: logger)
        let apiHub = LiveHub(subscriber: apiSubscriber, keys: keys)
        let api = APIServer(
            ingestor: Ingestor(client: client, queue: queue, keys: keys, configuration: IngestConfiguration()),
            inbox: inbox, feed: InboxFeed(hub: apiHub, inbox: inbox), queue: queue,
            devices: DeviceStore(client: client, keys: keys), preferences: PreferenceStore(client: client, keys: keys),
            backendKeys: APIKeyVerifier(entries: [APIKeyVerifier.Entry]()),
            adminKeys: APIKeyVerifier(entries: [APIKeyVerifier.Entry]()), userTokens: verifier,
            configuration: APIConfiguration())
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let (apiPorts, apiPortContinuation) = AsyncStream.makeStream(of: Int.self)
        let plexer = PlexerServer(
            services: PlexerServices(
                feed: InboxFeed(hub: plexerHub, inbox: inbox), verifier: verifier,
                acknowledger: api.acknowledger, configuration: PlexerConfiguration(), logger: logger),
            host: "127.0.0.1", port: 0
        ) { port in
            portContinuation.yield(port)
            portContinuation.finish()
        }
        let app = Application(
            router: api.makeRouter(), server: api.httpServer(logger: logger),
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                apiPortContinuation.yield(channel.localAddress?.port ?? 0)
                apiPortContinuation.finish()
            }, logger: logger)
        try await withRunningServices(
            [client, plexerSubscriber, apiSubscriber, plexer, app, plexerHub.ticker, apiHub.ticker], ports: ports,
            portContinuation: portContinuation, logger: logger
        ) { port, _ in
            var iterator = apiPorts.makeAsyncIterator()
            guard let apiPort = await iterator.next() else { throw DriverFailure("the API did not start") }
            try await body("ws://127.0.0.1:\(port)/ws", apiPort)
        }
    }
}
