import NIOCore
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

@Suite("Pipelining and batches", .timeLimit(.minutes(3)))
struct PipeliningTests {
    @Test("2,000 concurrent commands on one connection each get their own reply")
    func concurrentOrder() async throws {
        try await withRedisClient(configure: { $0.maxConnections = 1 }) { client, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<2_000 {
                    group.addTask {
                        let echoed = try await client.send("ECHO", .string("value-\(index)"))
                        #expect(echoed.string == "value-\(index)")
                        let set = try await client.send("SET", .string("key-\(index)"), .integer(index))
                        #expect(set == .simpleString("OK"))
                        #expect(try await client.send("GET", .string("key-\(index)")).int == index)
                    }
                }
                try await group.waitForAll()
            }
            #expect(client.openConnectionCount == 1)
            #expect(try await client.send("DBSIZE").int == 2_000)
        }
    }

    @Test("a batch goes out in one write and its replies come back in order, errors in place")
    func batchOrder() async throws {
        try await withRedisClient { client, _ in
            var commands = (0..<1_000).map { RedisCommand("ZADD", "z", .integer($0), .string("m\($0)")) }
            commands.append(RedisCommand("SET", "s", "x"))
            commands.append(RedisCommand("ZADD", "s", 1, "m"))  // WRONGTYPE in the middle
            commands.append(RedisCommand("ZCARD", "z"))
            let replies = try await client.send(batch: commands)
            #expect(replies.count == 1_003)
            #expect(replies[0..<1_000].allSatisfy { $0 == .integer(1) })
            #expect(replies[1_000] == .simpleString("OK"))
            #expect(replies[1_001].errorMessage?.hasPrefix("WRONGTYPE") == true)
            #expect(replies[1_002] == .integer(1_000))
            #expect(try await client.send(batch: []) == [])
        }
    }

    @Test("batches and single commands from many tasks interleave without mixing replies")
    func batchesInterleave() async throws {
        try await withRedisClient(configure: { $0.maxConnections = 2 }) { client, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for task in 0..<50 {
                    group.addTask {
                        let commands = (0..<20).map { RedisCommand("ECHO", .string("\(task)-\($0)")) }
                        let replies = try await client.send(batch: commands)
                        #expect(replies.map(\.string) == (0..<20).map { "\(task)-\($0)" })
                        #expect(try await client.send("ECHO", .string("single-\(task)")).string == "single-\(task)")
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}

@Suite("Coalescing pipeline", .timeLimit(.minutes(3)))
struct CoalescingPipelineTests {
    @Test("500 concurrent small batches share round trips; each gets its own replies in order, errors in place")
    func sharesRoundTrips() async throws {
        try await withRedisClient(configure: { $0.maxConnections = 1 }) { client, _ in
            let pipeline = CoalescingPipeline(client: client)
            try await client.send("SET", "text", "x")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<500 {
                    group.addTask {
                        var commands = [
                            RedisCommand("SET", .string("k\(index)"), .integer(index)),
                            RedisCommand("GET", .string("k\(index)")),
                        ]
                        if index % 10 == 0 { commands.append(RedisCommand("INCR", "text")) }  // not an integer
                        let replies = try await pipeline.send(batch: commands)
                        #expect(replies.count == commands.count)
                        #expect(replies[0] == .simpleString("OK"))
                        #expect(replies[1].int == index)
                        if index % 10 == 0 { #expect(replies[2].errorMessage != nil) }
                    }
                }
                try await group.waitForAll()
            }
            #expect(pipeline.roundTrips >= 1)
            #expect(pipeline.roundTrips < 500, "\(pipeline.roundTrips) round trips for 500 batches")
        }
    }

    @Test("a batch alone goes out at once, and a failure reaches its caller")
    func alone() async throws {
        try await withRedisClient { client, _ in
            let pipeline = CoalescingPipeline(client: client)
            let pong = try await pipeline.send(batch: [RedisCommand("PING")])
            #expect(pong == [.simpleString("PONG")])
            await client.shutdown()
            await #expect(throws: RedisClientError.self) { try await pipeline.send(batch: [RedisCommand("PING")]) }
            #expect(pipeline.roundTrips == 2)
        }
    }
}
