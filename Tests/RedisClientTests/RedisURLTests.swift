import RedisClient
import Testing

@Suite("Redis URLs", .timeLimit(.minutes(3)))
struct RedisURLTests {
    @Test("host, port, user, password and database are read")
    func full() throws {
        let url = try RedisURL("redis://alice:p%40ss@cache.internal:6380/4")
        #expect(url.host == "cache.internal")
        #expect(url.port == 6380)
        #expect(url.user == "alice")
        #expect(url.password == "p@ss")
        #expect(url.database == 4)
        #expect(url.description == "redis://alice:***@cache.internal:6380/4")
    }

    @Test("defaults: port 6379, database 0, no auth; a password alone is requirepass")
    func defaults() throws {
        let plain = try RedisURL("redis://localhost")
        #expect(plain.port == 6379 && plain.database == 0 && plain.user == nil && plain.password == nil)
        let requirepass = try RedisURL("redis://:secret@localhost:7000")
        #expect(requirepass.user == nil && requirepass.password == "secret")
        #expect(!requirepass.description.contains("secret"))
    }

    @Test(
        "bad URLs are refused with a clear reason",
        arguments: [
            ("rediss://localhost", "TLS"), ("http://localhost", "scheme"), ("redis://", "host"),
            ("redis://localhost/x", "database"), ("not a url", "URL"),
        ])
    func refused(text: String, reason: String) throws {
        let error = #expect(throws: RedisClientError.self) { try RedisURL(text) }
        #expect(error?.code == .invalidURL)
        #expect(error?.message.contains(reason) == true)
    }
}
