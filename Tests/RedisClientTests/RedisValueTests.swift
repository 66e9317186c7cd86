import NIOCore
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

@Suite("Replies and arguments", .timeLimit(.minutes(3)))
struct RedisValueTests {
    @Test("strings, integers, nil and error replies decode to typed values")
    func basicReplies() async throws {
        try await withRedisClient { client, _ async throws in
            #expect(try await client.send("SET", "k", "v") == .simpleString("OK"))
            #expect(try await client.send("GET", "k").string == "v")
            #expect(try await client.send("GET", "missing") == .null)
            #expect(try await client.send("INCRBY", "n", 41) == .integer(41))
            #expect(try await client.send("INCR", "n").int == 42)
            #expect(try await client.send("LRANGE", "nothing", 0, -1) == .array([]))
            let error = await #expect(throws: RedisClientError.self) { try await client.send("LPUSH", "k", "x") }
            #expect(error?.code == .errorReply)
            #expect(error?.isErrorReply("WRONGTYPE") == true)
        }
    }

    @Test("nested arrays with nil elements keep their shape, up to hiredis' depth limit")
    func nestedArrays() async throws {
        try await withRedisClient { client, _ in
            let reply = try await client.send("EVAL", "return {1, {2, {3, false}}, 'x', {}}", 0)
            #expect(
                reply
                    == .array([
                        .integer(1),
                        .array([.integer(2), .array([.integer(3), .null])]),
                        .bulkString(ByteBuffer(string: "x")),
                        .array([]),
                    ]))
            // Seven levels of nesting are the most hiredis 0.14 parses.
            let seven = try await client.send("EVAL", "return {{{{{{{7}}}}}}}", 0)
            var depth = 0
            var current = seven
            while case .array(let elements) = current, let first = elements.first {
                depth += 1
                current = first
            }
            #expect(depth == 7)
            #expect(current == .integer(7))
        }
    }

    @Test("a reply nested deeper than hiredis parses is a protocol error, and the client recovers")
    func tooDeep() async throws {
        try await withRedisClient { client, _ async throws in
            let error = await #expect(throws: RedisClientError.self) {
                try await client.send("EVAL", "return {{{{{{{{{9}}}}}}}}}", 0)
            }
            #expect(error?.code == .protocolError)
            #expect(try await client.send("PING") == .simpleString("PONG"))
        }
    }

    @Test("values are binary safe: every byte value, NUL included")
    func binarySafe() async throws {
        try await withRedisClient { client, _ in
            let bytes = ByteBuffer(bytes: (0...255).map { UInt8($0) } + [0, 0, 13, 10])
            let key = ByteBuffer(bytes: [0x6B, 0x00, 0xFF, 0x0D, 0x0A])
            try await client.send("SET", .bytes(key), .bytes(bytes))
            #expect(try await client.send("GET", .bytes(key)).bytes == bytes)
            #expect(try await client.send("STRLEN", .bytes(key)).int == 260)
        }
    }

    @Test("1 MiB values go through in both directions")
    func largeValues() async throws {
        try await withRedisClient { client, _ in
            var value = ByteBuffer()
            for index in 0..<(1 << 20) {
                value.writeInteger(UInt8(truncatingIfNeeded: index &* 31 &+ 7))
            }
            try await client.send("SET", "big", .bytes(value))
            let read = try await client.send("GET", "big")
            #expect(read.bytes == value)
            // Several at once, to cross read buffer boundaries mid-reply.
            let many = try await client.send(batch: Array(repeating: RedisCommand("GET", "big"), count: 4))
            #expect(many.allSatisfy { $0.bytes == value })
        }
    }

    @Test("doubles, integers and strings are encoded as Redis reads them")
    func argumentEncoding() async throws {
        try await withRedisClient { client, _ in
            try await client.send("ZADD", "z", .double(1.5), "a", .double(-.infinity), "b", 3, "c")
            let members = try await client.send("ZRANGE", "z", 0, -1, "WITHSCORES")
            #expect(members.array?.compactMap(\.string) == ["b", "-inf", "a", "1.5", "c", "3"])
            #expect(try await client.send("ECHO", "héllo ✓").string == "héllo ✓")
        }
    }

    @Test("decoding helpers refuse replies of the wrong shape")
    func decodeHelpers() throws {
        let value = RedisValue.array([.integer(1)])
        #expect(throws: RedisClientError.self) { try value.decode(\.string) }
        #expect(try RedisValue.bulkString(ByteBuffer(string: "12")).decode(\.int) == 12)
        #expect(RedisValue.bulkString(ByteBuffer(string: "2.5")).double == 2.5)
        #expect(throws: RedisClientError.self) { try RedisValue.error("ERR x").throwingIfError() }
    }
}
