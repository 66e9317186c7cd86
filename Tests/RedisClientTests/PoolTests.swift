import NIOCore
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

@Suite("Pool, timeouts and failures", .timeLimit(.minutes(3)))
struct PoolTests {
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
            $0.acquireTimeoutMs = 150
        }) { client, server in
            try await client.send("PING")
            async let blocked = client.send("BLPOP", "list", "5")
            // Wait until Redis shows the BLPOP blocking: the pool's only slot is now taken.
            let observer = makeClient(for: server)
            try await waitUntilBlocked(observer)
            let started = ContinuousClock.now
            let error = await #expect(throws: RedisClientError.self) { try await client.send("PING") }
            #expect(error?.code == .poolExhausted)
            #expect(ContinuousClock.now - started >= .milliseconds(140))
            // A freed slot serves waiters again.
            try await observer.send("RPUSH", "list", "x")
            #expect(try await blocked.array?.last?.string == "x")
            #expect(try await client.send("PING") == .simpleString("PONG"))
            await observer.shutdown()
        }
    }

    @Test("a late reply fails with commandTimeout, closes that connection, and the next command reconnects")
    func commandTimeout() async throws {
        try await withRedisClient(configure: { $0.commandTimeoutMs = 200 }) { client, _ in
            let firstID = try await client.send("CLIENT", "ID").int
            let error = await #expect(throws: RedisClientError.self) { try await client.send("BLPOP", "q", "3") }
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
                configuration: RedisClientConfiguration(url: wrong, acquireTimeoutMs: 300), logger: testLogger("redis"))
            let error = await #expect(throws: RedisClientError.self) { try await refused.send("PING") }
            #expect(error?.code == .connectionFailed)
            #expect(error?.message.contains("WRONGPASS") == true)
            #expect(error?.message.contains("wrong") == false)
            for each in [client, clientDB0, refused] { await each.shutdown() }
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
                $0.commandTimeoutMs = 150
            }
            let admin = makeClient(for: server)
            try await client.send("PING")
            #expect(client.openConnectionCount == 1)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                // Every client but the admin's stalls: the next health-check PING times out.
                try await admin.send("CLIENT", "PAUSE", "1000", "ALL")
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
