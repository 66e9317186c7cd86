import DelayQueue
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The `notify` binary as a user runs it: a child process of the test, talked to over real sockets.
@Suite("notify dev, end to end", .timeLimit(.minutes(2)))
struct DevCommandTests {
    @Test("starts its own Redis, serves ops endpoints, and on SIGTERM stops cleanly with its Redis")
    func devLifecycle() async throws {
        let stateDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-test-\(UUID())")
        var environment = NotifyBinary.cleanEnvironment
        environment["NOTIFY_HTTP_PORT"] = "0"
        environment["NOTIFY_LOG_LEVEL"] = "warning"
        environment["NOTIFY_DEV_STATE_DIR"] = stateDirectory.path
        environment["NOTIFY_SHARD_COUNT"] = "8"
        let (process, output, exited) = try Self.start(["dev"], environment: environment)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }

        let banner = try await Self.readBanner(from: output.fileHandleForReading)
        let port = try #require(Self.capture(#"http://127\.0\.0\.1:(\d+)/healthz"#, in: banner).flatMap { Int($0) })
        let redisURL = try RedisURL(try #require(Self.capture(#"redis: (redis://\S+)"#, in: banner)))

        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            let ready = try await client.get("/readyz")
            #expect(ready.status == .ok)
            #expect(String(buffer: ready.body ?? ByteBuffer()).contains(#""redis":"ok""#))
            let metrics = try await client.get("/metrics")
            #expect(String(buffer: metrics.body ?? ByteBuffer()).contains("notify_redis_connects_total"))
        }
        // Default timeouts: the suite runs in parallel on two cores, where a connect can take longer than 200 ms.
        let redis = RedisClient(configuration: RedisClientConfiguration(url: redisURL), logger: testLogger("redis"))
        #expect(try await redis.send("PING") == .simpleString("PONG"))

        // `notify queue` finds the dev Redis by itself and shows what is queued there.
        let queue = DelayQueue(client: redis, shards: ShardMap(count: 8))
        let id = try JobID(notificationID: "n1", userID: "alice")
        try await queue.schedule(QueueJob(id: id, payload: ByteBuffer(string: "{}")), inMs: 60_000)
        let statsJSON = try await Self.runCommand(["queue", "stats", "--json"], environment: environment)
        let stats = try JSONDecoder().decode(StatsDocument.self, from: Data(statsJSON.utf8))
        #expect(stats.total.scheduledLater == 1 && stats.shards.count == 8)
        #expect(try await Self.runCommand(["queue", "peek"], environment: environment).contains("n1/alice"))
        #expect(
            try await Self.runCommand(["queue", "cancel", "n1/alice"], environment: environment)
                == "n1/alice: cancelled\n")
        let table = try await Self.runCommand(["queue", "stats"], environment: environment)
        #expect(table.contains("cancelled=1") && table.contains("scheduled=1"))

        // The README's seed flow with the credentials dev made up: send, read the inbox, ack, push cancelled.
        let key = try String(contentsOf: stateDirectory.appendingPathComponent("api-key"), encoding: .utf8)
        let token = try String(contentsOf: stateDirectory.appendingPathComponent("token-alice"), encoding: .utf8)
        try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            let sent = try await client.post(
                "/v1/notifications", headers: [.authorization: "Bearer \(key)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"recipients":["alice"],"type":"message","payload":{"text":"hi"}}"#))
            #expect(sent.status == .accepted)
            let inbox = try await client.get("/v1/inbox", headers: [.authorization: "Bearer \(token)"])
            let body = String(buffer: inbox.body ?? ByteBuffer())
            let eventID = try #require(Self.capture(#""id":"(\d+-\d+)""#, in: body))
            let ack = try await client.post(
                "/v1/ack", headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"up_to":"\#(eventID)"}"#))
            #expect(String(buffer: ack.body ?? ByteBuffer()).contains(#""cancelled":1"#))
        }
        #expect(try await Self.runCommand(["queue", "stats"], environment: environment).contains("cancelled=2"))
        await redis.shutdown()

        kill(process.processIdentifier, SIGTERM)
        var iterator = exited.makeAsyncIterator()
        #expect(await iterator.next() == 0)
        #expect(!FileManager.default.fileExists(atPath: stateDirectory.appendingPathComponent("redis.url").path))
        let after = RedisClient(
            configuration: RedisClientConfiguration(url: redisURL, acquireTimeoutMs: 300, connectTimeoutMs: 200),
            logger: testLogger("redis"))
        await #expect(throws: RedisClientError.self) { try await after.send("PING") }
        await after.shutdown()
    }

    @Test(
        "with http.opsPort the ops endpoints get their own listener and leave the API's; readiness covers pub/sub; an access_token in the query reaches no log line, even at trace level"
    )
    func opsListenerAndQuietLogs() async throws {
        let stateDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("notify-test-\(UUID())")
        var environment = NotifyBinary.cleanEnvironment
        environment["NOTIFY_HTTP_PORT"] = "0"
        environment["NOTIFY_HTTP_OPS_PORT"] = "0"
        environment["NOTIFY_LOG_LEVEL"] = "trace"
        environment["NOTIFY_DEV_STATE_DIR"] = stateDirectory.path
        environment["NOTIFY_SHARD_COUNT"] = "8"
        let exited = AsyncStream.makeStream(of: Int32.self)
        let (process, output) = try NotifyBinary.launch(["dev"], environment: environment, withErrors: true) {
            exited.continuation.yield($0.terminationStatus)
        }
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let collected = LogCollector(output.fileHandleForReading)
        let banner = try await collected.wait(for: "Press Ctrl-C")
        let api = try #require(Self.capture(#"api: +http://127\.0\.0\.1:(\d+)/"#, in: banner).flatMap { Int($0) })
        let ops = try #require(Self.capture(#"ops: +http://127\.0\.0\.1:(\d+)/"#, in: banner).flatMap { Int($0) })
        #expect(api != ops)
        try await TestClient.withClient(host: "127.0.0.1", port: ops) { client in
            let ready = try await client.get("/readyz")
            #expect(ready.status == .ok)
            #expect(String(buffer: ready.body ?? ByteBuffer()).contains(#""redisPubSub":"ok""#))
            #expect(try await client.get("/metrics").status == .ok)
        }
        let secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtc3ViamVjdCJ9.c2VjcmV0LXNpZ25hdHVyZS1ub3QtbG9nZ2Vk"
        try await TestClient.withClient(host: "127.0.0.1", port: api) { client in
            #expect(try await client.get("/metrics").status == .notFound)
            let stream = try await client.get("/v1/stream?access_token=\(secret)")
            #expect(stream.status == .unauthorized)
        }
        kill(process.processIdentifier, SIGTERM)
        var iterator = exited.stream.makeAsyncIterator()
        #expect(await iterator.next() == 0)
        let log = try await collected.untilEnd()
        #expect(log.contains("http.path=/v1/stream"), "debug logging shows each request's path")
        #expect(!log.contains("c2VjcmV0LXNpZ25hdHVyZS1ub3QtbG9nZ2Vk") && !log.contains("access_token="))
    }

    @Test("notify api refuses to start open: without API keys it exits with a clear error")
    func apiNeedsKeys() async throws {
        #expect(try await Self.failedStart(["api"]).contains("auth.apiKeys is empty"))
    }

    @Test("notify api starts while the token issuer is down, takes notifications, refuses tokens, stops on SIGTERM")
    func apiStartsWithoutIssuer() async throws {
        try await withRedisServer { server in
            let refusing = try RefusingPort()
            let key = APIKeyVerifier.generate(name: "backend")
            var environment = NotifyBinary.cleanEnvironment
            environment["NOTIFY_REDIS_URL"] = "\(server.url)"
            environment["NOTIFY_HTTP_PORT"] = "0"
            environment["NOTIFY_LOG_LEVEL"] = "error"
            environment["NOTIFY_AUTH_API_KEYS"] = key.entry
            environment["NOTIFY_AUTH_JWT_JWKS_URL"] = "http://127.0.0.1:\(refusing.port)/certs"
            environment["NOTIFY_AUTH_JWT_ISSUER"] = "https://sso.test/realms/chat"
            let (process, output, exited) = try Self.start(["api"], environment: environment)
            defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
            let banner = try await Self.readBanner(from: output.fileHandleForReading, until: "listening on")
            let port = try #require(
                Self.capture(#"listening on http://127\.0\.0\.1:(\d+)"#, in: banner).flatMap { Int($0) })
            try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
                let sent = try await client.post(
                    "/v1/notifications",
                    headers: [.authorization: "Bearer \(key.key)", .contentType: "application/json"],
                    body: ByteBuffer(string: #"{"recipients":["alice"],"type":"message"}"#))
                #expect(sent.status == .accepted)
                let token =
                    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.c2lnbmF0dXJl"
                let inbox = try await client.get("/v1/inbox", headers: [.authorization: "Bearer \(token)"])
                #expect(inbox.status == .unauthorized)
            }
            kill(process.processIdentifier, SIGTERM)
            var iterator = exited.makeAsyncIterator()
            #expect(await iterator.next() == 0)
        }
    }

    @Test("notify plexer without a user token check refuses to start, saying what to set")
    func plexerNeedsTokens() async throws {
        let output = try await Self.failedStart(["plexer"])
        #expect(output.contains("no user token check is configured: set auth.jwt.jwksURL"))
    }

    @Test("a trusted-authority file that holds no certificate stops notify worker at start, naming the setting")
    func badAuthorityFile() async throws {
        let output = try await Self.failedStart(["worker"], ["NOTIFY_PUSH_CA_FILE": #filePath])  // a Swift file
        #expect(output.contains("push.caFile: \(#filePath) is not a PEM file of certificates"), "\(output)")
    }

    /// Runs `notify <arguments>` against a fresh Redis (any port), expects it to exit with an error, and returns
    /// what it printed.
    private static func failedStart(_ arguments: [String], _ extra: [String: String] = [:]) async throws -> String {
        try await withRedisServer { server in
            var environment = NotifyBinary.cleanEnvironment.merging(extra) { _, new in new }
            environment["NOTIFY_REDIS_URL"] = "\(server.url)"
            environment["NOTIFY_HTTP_PORT"] = "0"
            let (status, output) = try await NotifyBinary.run(arguments, environment: environment, withErrors: true)
            #expect(status != 0, "\(output)")
            return output
        }
    }

    struct StatsDocument: Decodable {
        var total: QueueStats
        var shards: [Shard]

        struct Shard: Decodable {
            var shard: Int
        }
    }

    /// Runs `notify <arguments>` to completion and returns its stdout; throws on a non-zero exit.
    private static func runCommand(_ arguments: [String], environment: [String: String]) async throws -> String {
        let (status, output) = try await NotifyBinary.run(arguments, environment: environment)
        guard status == 0 else { throw CommandFailed(arguments: arguments, output: output) }
        return output
    }

    struct CommandFailed: Error {
        let arguments: [String]
        let output: String
    }

    /// Starts `notify <arguments>` as a child process; its stdout is readable, its exit status arrives on `exited`.
    private static func start(_ arguments: [String], environment: [String: String]) throws
        -> (process: Process, output: Pipe, exited: AsyncStream<Int32>)
    {
        try #require(
            FileManager.default.isExecutableFile(atPath: NotifyBinary.url.path), "build the notify binary first")
        let exited = AsyncStream.makeStream(of: Int32.self)
        let (process, output) = try NotifyBinary.launch(arguments, environment: environment) {
            exited.continuation.yield($0.terminationStatus)
        }
        return (process, output, exited.stream)
    }

    /// Reads stdout until `marker` (by default the end of `notify dev`'s banner).
    private static func readBanner(from handle: FileHandle, until marker: String = "Press Ctrl-C") async throws
        -> String
    {
        let chunks = AsyncStream.makeStream(of: Data.self)
        handle.readabilityHandler = { file in
            let data = file.availableData
            if data.isEmpty { chunks.continuation.finish() } else { chunks.continuation.yield(data) }
        }
        defer { handle.readabilityHandler = nil }
        var text = ""
        for await chunk in chunks.stream {
            text += String(decoding: chunk, as: UTF8.self)
            if text.contains(marker) { return text }
        }
        throw BannerMissing(output: text)
    }

    private static func capture(_ pattern: String, in text: String) -> String? {
        guard let regex = try? NSRegularExpression(pattern: pattern),
            let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
            let range = Range(match.range(at: 1), in: text)
        else { return nil }
        return String(text[range])
    }

    struct BannerMissing: Error {
        let output: String
    }
}

/// Everything a child process writes, gathered as it arrives.
actor LogCollector {
    private var collected = ""
    private var waiters: [(id: Int, marker: String, continuation: CheckedContinuation<String, any Error>)] = []
    private var nextWaiter = 0
    private var ended = false

    init(_ handle: FileHandle) {
        // One ordered stream of chunks, appended by one task: the end (an empty chunk) comes after the data.
        let chunks = AsyncStream.makeStream(of: Data.self)
        handle.readabilityHandler = { file in
            let data = file.availableData
            chunks.continuation.yield(data)
            if data.isEmpty {
                chunks.continuation.finish()
                file.readabilityHandler = nil
            }
        }
        Task {
            for await chunk in chunks.stream { await self.append(chunk) }
        }
    }

    private func append(_ data: Data) {
        if data.isEmpty { self.ended = true } else { self.collected += String(decoding: data, as: UTF8.self) }
        self.waiters.removeAll { waiter in
            if waiter.marker.isEmpty ? self.ended : self.collected.contains(waiter.marker) {
                waiter.continuation.resume(returning: self.collected)
                return true
            }
            if self.ended {
                waiter.continuation.resume(throwing: DevCommandTests.BannerMissing(output: self.collected))
                return true
            }
            return false
        }
    }

    /// Returns the output so far once it contains `marker` (not empty).
    func wait(for marker: String, seconds: Double = 60) async throws -> String {
        if self.collected.contains(marker) { return self.collected }
        return try await self.waiter(marker, seconds: seconds)
    }

    /// Returns everything once the process closed its output.
    func untilEnd(seconds: Double = 60) async throws -> String {
        if self.ended { return self.collected }
        return try await self.waiter("", seconds: seconds)
    }

    /// A waiter that fails after `seconds`: a raw continuation ignores the test's time limit.
    private func waiter(_ marker: String, seconds: Double) async throws -> String {
        let id = self.nextWaiter
        self.nextWaiter += 1
        Task {
            try await Task.sleep(for: .seconds(seconds))
            await self.expire(id)
        }
        return try await withCheckedThrowingContinuation { self.waiters.append((id, marker, $0)) }
    }

    private func expire(_ id: Int) {
        guard let index = self.waiters.firstIndex(where: { $0.id == id }) else { return }
        self.waiters.remove(at: index).continuation.resume(
            throwing: DevCommandTests.BannerMissing(output: self.collected))
    }
}
