import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

@Suite("Scripts", .timeLimit(.minutes(3)))
struct ScriptTests {
    static let incrementBy = RedisScript(
        """
        local value = redis.call('INCRBY', KEYS[1], ARGV[1])
        return {value, ARGV[2]}
        """)

    @Test("EVALSHA runs a loaded script and falls back to the source after SCRIPT FLUSH")
    func noScriptFallback() async throws {
        try await withRedisClient { client, _ in
            let first = try await client.eval(Self.incrementBy, keys: ["counter"], arguments: [5, "tag"])
            #expect(first.array?.first == .integer(5))
            #expect(first.array?.last?.string == "tag")
            let exists = try await client.send("SCRIPT", "EXISTS", .string(Self.incrementBy.sha1))
            #expect(exists == .array([.integer(1)]))

            try await client.send("SCRIPT", "FLUSH")
            let second = try await client.eval(Self.incrementBy, keys: ["counter"], arguments: [2, "again"])
            #expect(second.array?.first == .integer(7))

            try await client.send("SCRIPT", "FLUSH")
            let batch = try await client.eval(
                Self.incrementBy, batch: (0..<10).map { _ in RedisScriptCall(keys: ["counter"], arguments: [1, "b"]) })
            #expect(batch.compactMap { $0.array?.first?.int } == Array(8...17))
        }
    }

    @Test("a script survives a Redis restart that empties the script cache")
    func afterRestart() async throws {
        try await withRedisClient { client, server in
            try await client.load(Self.incrementBy)
            try await server.restart()
            let reply = try await client.eval(Self.incrementBy, keys: ["c"], arguments: [3, "x"])
            #expect(reply.array?.first == .integer(3))
        }
    }

    @Test("an error raised by a script is an errorReply")
    func scriptError() async throws {
        try await withRedisClient { client, _ in
            let failing = RedisScript("return redis.error_reply('BADJOB job is broken')")
            let error = await #expect(throws: RedisClientError.self) {
                try await client.eval(failing, keys: [], arguments: [])
            }
            #expect(error?.isErrorReply("BADJOB") == true)
        }
    }

    @Test("the SHA1 matches what Redis computes")
    func sha1() async throws {
        try await withRedisClient { client, _ in
            let loaded = try await client.send("SCRIPT", "LOAD", .string(Self.incrementBy.source))
            #expect(loaded.string == Self.incrementBy.sha1)
        }
    }
}
