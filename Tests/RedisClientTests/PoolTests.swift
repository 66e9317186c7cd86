import NIOCore
import NotifyCore
import NotifyTestSupport
import RedisClient
import Synchronization
import Testing

@Suite("Pool, timeouts and failures", .timeLimit(.minutes(3)))
struct PoolTests {
    @Test("callers waiting for a busy pool are served in the order they came")
    func waitersInOrder() async throws {
        try await withRedisClient(configure: {
            $0.maxConnections = 1
            $0.maxInFlightPerConnection = 1
            $0.acquireTimeoutMs = 10_000
        }) { client, server in
            try await client.send("PING")
            async let blocked = client.send("BLPOP", "gate", "10")
            let observer = makeClient(for: server)
            try await waitUntilBlocked(observer)
            let order = OrderLog()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<5 {
                    group.addTask {
                        _ = try await client.send("ECHO", .string("\(index)"))
                        order.append(index)
                    }
                    // The next caller comes only once this one waits in line.
                    try await PoolPoll.until { client.waitingCount == index + 1 }
                }
                try await observer.send("RPUSH", "gate", "open")
                try await group.waitForAll()
            }
            _ = try await blocked
            #expect(order.all == [0, 1, 2, 3, 4])
            await observer.shutdown()
        }
    }

    @Test("a connection Redis stops reading from holds a bounded outbox: past the bound, commands fail at once")
    func boundedOutbox() async throws {
        try await withRedisClient(
            arguments: ["--enable-debug-command", "yes"],
            configure: {
                $0.maxConnections = 1
                $0.maxInFlightPerConnection = 10_000
                $0.maxOutboxBytes = 1 << 20
                $0.commandTimeoutMs = 20_000
            }
        ) { client, _ in
            try await client.send("PING")
            // Redis reads nothing for 2 s: the socket fills, then the outbox. (Same connection, so the SETs below
            // queue behind it or just before it; either way 20 MB meet a sleeping server.)
            let sleep = Task { try await client.send("DEBUG", "SLEEP", "2") }
            let value = RedisArgument.bytes(ByteBuffer(repeating: 0x61, count: 100_000))
            let outcomes = await withTaskGroup(of: RedisClientError.Code?.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        do {
                            _ = try await client.send("SET", .string("big-\(index)"), value)
                            return nil
                        } catch let error as RedisClientError {
                            return error.code
                        } catch {
                            return .protocolError
                        }
                    }
                }
                var outcomes: [RedisClientError.Code?] = []
                for await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            _ = try await sleep.value
            #expect(outcomes.contains(.outboxFull), "20 MB aimed at a sleeping Redis must hit the bound")
            #expect(outcomes.allSatisfy { $0 == nil || $0 == .outboxFull })
            #expect(try await client.send("PING") == .simpleString("PONG"))
        }
    }

    @Test("connections open lazily and never beyond the limit")
    func lazyAndBounded() async throws {
        try await withRedisClient(configure: {
            $0.maxConnections = 3
            $0.maxInFlightPerConnection = 1
        }) { client, _ in
            #expect(client.openConnectionCount == 0)
            try await client.send("PING")
            #expect(client.openConnectionCount == 1)
            // Hold connections busy with blocking commands so the pool must grow, up to its limit only.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<6 {
                    group.addTask { try await client.send("BLPOP", .string("never-\(index)"), "0.3") }
                }
                try await group.waitForAll()
            }
            #expect(client.openConnectionCount == 3)
            let clients = try await client.send("CLIENT", "LIST", "TYPE", "normal").string ?? ""
            #expect(clients.split(separator: "\n").count == 3)
        }
    }

    @Test("when every connection is at its in-flight limit, callers wait, then get poolExhausted")
    func exhaustion() async throws {
        try await withRedisClient(configure: {
            $0.maxConnections = 1
            $0.maxInFlightPerConnection = 1
            // Also the first connect's budget (handshake included): 150 ms and then 600 ms ran out on a loaded
            // machine (the whole suite in parallel).
            $0.acquireTimeoutMs = 2_000
        }) { client, server in
            try await client.send("PING")
            // Blocks until the RPUSH below, not for a time that a loaded machine could use up before then.
            async let blocked = client.send("BLPOP", "list", "60")
            // Wait until Redis shows the BLPOP blocking: the pool's only slot is now taken.
            let observer = makeClient(for: server)
            try await waitUntilBlocked(observer)
            let started = ContinuousClock.now
            let error = await #expect(throws: RedisClientError.self) { try await client.send("PING") }
            #expect(error?.code == .poolExhausted)
            #expect(ContinuousClock.now - started >= .milliseconds(1_990))
            // A freed slot serves waiters again.
            try await observer.send("RPUSH", "list", "x")
            #expect(try await blocked.array?.last?.string == "x")
            #expect(try await client.send("PING") == .simpleString("PONG"))
            await observer.shutdown()
        }
    }

    @Test("a late reply fails with commandTimeout, closes that connection, and the next command reconnects")
    func commandTimeout() async throws {
        // 200 ms once ran out for the first CLIENT ID on a machine loaded by the whole suite.
        try await withRedisClient(configure: { $0.commandTimeoutMs = 1_500 }) { client, _ in
            let firstID = try await client.send("CLIENT", "ID").int
            let error = await #expect(throws: RedisClientError.self) { try await client.send("BLPOP", "q", "5") }
            #expect(error?.code == .commandTimeout)
            let secondID = try await client.send("CLIENT", "ID").int
            #expect(firstID != nil && secondID != nil && firstID != secondID)
        }
    }

    @Test("no server: connectionFailed after the acquire timeout, not a hang")
    func noServer() async throws {
        let refusing = try RefusingPort()
        let client = RedisClient(
            configuration: RedisClientConfiguration(
                url: RedisURL(host: "127.0.0.1", port: refusing.port), acquireTimeoutMs: 300, connectTimeoutMs: 200),
            logger: testLogger("redis"))
        let error = await #expect(throws: RedisClientError.self) { try await client.send("PING") }
        #expect(error?.code == .connectionFailed)
        await client.shutdown()
        _ = refusing
    }

    @Test("a connection killed by the server is replaced on the next command")
    func clientKill() async throws {
        try await withRedisClient(configure: { $0.maxConnections = 1 }) { client, server in
            let firstID = try #require(try await client.send("CLIENT", "ID").int)
            let admin = makeClient(for: server)
            #expect(try await admin.send("CLIENT", "KILL", "ID", .integer(firstID)) == .integer(1))
            // The command may race the close: it either fails as closed or runs on a new connection.
            var secondID: Int?
            for _ in 0..<3 where secondID == nil {
                do {
                    secondID = try await client.send("CLIENT", "ID").int
                } catch let error as RedisClientError where error.code == .connectionClosed {
                    continue
                }
            }
            #expect(secondID != nil && secondID != firstID)
            await admin.shutdown()
        }
    }

    @Test("commands in flight when Redis dies fail as connectionClosed; after a restart the client reconnects")
    func redisRestart() async throws {
        try await withRedisClient { client, server in
            try await client.send("SET", "before", "1")
            let blocked = Task { try await client.send("BLPOP", "q", "10") }
            let observer = makeClient(for: server)
            try await waitUntilBlocked(observer)
            await observer.shutdown()
            try await server.restart()
            let error = await #expect(throws: RedisClientError.self) { try await blocked.value }
            #expect(error?.code == .connectionClosed)
            #expect(try await client.send("PING") == .simpleString("PONG"))
        }
    }

    @Test("AUTH with an ACL user and SELECT of a database happen on every connection")
    func authAndSelect() async throws {
        let arguments = ["--user", "default", "off", "--user", "alice", "on", ">s3cret-pass", "~*", "&*", "+@all"]
        try await withRedisServer(arguments: arguments) { server in
            var url = server.url
            url.user = "alice"
            url.password = "s3cret-pass"
            url.database = 3
            let client = RedisClient(
                configuration: RedisClientConfiguration(url: url, maxConnections: 2), logger: testLogger("redis"))
            try await client.send("SET", "in-db-3", "yes")
            #expect(try await client.send("ACL", "WHOAMI").string == "alice")
            var other = url
            other.database = 0
            let clientDB0 = RedisClient(
                configuration: RedisClientConfiguration(url: other), logger: testLogger("redis"))
            #expect(try await clientDB0.send("EXISTS", "in-db-3") == .integer(0))
            var wrong = url
            wrong.password = "wrong"
            let refused = RedisClient(
                configuration: RedisClientConfiguration(url: wrong, acquireTimeoutMs: 2_000),
                logger: testLogger("redis"))
            let error = await #expect(throws: RedisClientError.self) { try await refused.send("PING") }
            #expect(error?.code == .connectionFailed)
            #expect(error?.message.contains("WRONGPASS") == true)
            #expect(error?.message.contains("wrong") == false)
            for each in [client, clientDB0, refused] { await each.shutdown() }
        }
    }

    @Test("a server at maxclients (accepts, answers an error, closes) is a failed connect, not an error reply")
    func serverAtMaxClients() async throws {
        try await withRedisServer(arguments: ["--maxclients", "1"]) { server in
            let holder = makeClient(for: server)
            try await holder.send("PING")
            // A deadline for failures only: under a loaded suite the refused connect can take longer than 500 ms.
            let refused = makeClient(for: server) { $0.acquireTimeoutMs = 5_000 }
            let error = await #expect(throws: RedisClientError.self) { try await refused.send("PING") }
            // Redis' reason when its error arrives before the close; "handshake failed" when the close wins.
            #expect(error?.code == .connectionFailed)
            #expect(error?.message.contains("handshake") == true)
            await refused.shutdown()
            await holder.shutdown()
        }
    }

    @Test("a command sent on a connection already closed fails as not sent instead of hanging")
    func sendOnClosedConnection() async throws {
        try await withRedisClient { client, _ in
            try await client.withConnection { connection in
                await connection.close()
                let error = await #expect(throws: RedisClientError.self) {
                    try await connection.send(RedisCommand("PING"))
                }
                #expect(error?.code == .connectionClosed)
                #expect(error?.message.contains("before the command was sent") == true)
                let batchError = await #expect(throws: RedisClientError.self) {
                    try await connection.send(batch: [RedisCommand("PING"), RedisCommand("PING")])
                }
                #expect(batchError?.code == .connectionClosed)
            }
            #expect(try await client.send("PING") == .simpleString("PONG"))
        }
    }

    @Test("after shutdown, commands fail with shutdown")
    func shutdown() async throws {
        try await withRedisClient { client, _ in
            try await client.send("PING")
            await client.shutdown()
            let error = await #expect(throws: RedisClientError.self) { try await client.send("PING") }
            #expect(error?.code == .shutdown)
        }
    }
}

@Suite("Pool health checks", .timeLimit(.minutes(3)))
struct PoolHealthTests {
    @Test("run() pings idle connections and drops one that stops answering, without any caller noticing")
    func healthCheckDropsUnresponsive() async throws {
        try await withRedisServer { server in
            let client = makeClient(for: server) {
                $0.healthCheckIntervalMs = 50
                $0.commandTimeoutMs = 1_000  // 150 ms ran out for the first PING under the parallel suite
            }
            let admin = makeClient(for: server)
            try await client.send("PING")
            #expect(client.openConnectionCount == 1)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                // Every client but the admin's stalls: the next health-check PING times out.
                try await admin.send("CLIENT", "PAUSE", "5000", "ALL")  // long: a loaded machine is slow to time out
                let deadline = ContinuousClock.now + .seconds(5)
                while client.openConnectionCount != 0, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(client.openConnectionCount == 0)
                try await admin.send("CLIENT", "UNPAUSE")
                #expect(try await client.send("PING") == .simpleString("PONG"))
                group.cancelAll()
            }
            await admin.shutdown()
            await client.shutdown()
        }
    }
}

/// Waits (polling Redis, up to 10 s) until a client is blocked in a BLPOP.
func waitUntilBlocked(_ observer: RedisClient) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while try await observer.send("INFO", "clients").string?.contains("blocked_clients:1") != true {
        guard ContinuousClock.now < deadline else { throw BlockedTimeout() }
        await Task.yield()
    }
}

struct BlockedTimeout: Error {}

/// Completion order, appended from many tasks.
final class OrderLog: Sendable {
    private let entries = Mutex<[Int]>([])
    func append(_ value: Int) { self.entries.withLock { $0.append(value) } }
    var all: [Int] { self.entries.withLock { $0 } }
}

/// Polls a condition that has no event to await, briefly, up to 10 s.
enum PoolPoll {
    static func until(_ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !(await condition()) {
            guard ContinuousClock.now < deadline else { throw BlockedTimeout() }
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}
