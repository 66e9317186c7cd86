import Foundation
import NotifyCore
import NotifyTestSupport
import RedisClient
import Testing

@Suite("Local redis-server", .timeLimit(.minutes(3)))
struct LocalRedisServerTests {
    @Test("starts on a free port, keeps AOF data across a crash, and cleans up its folder on stop")
    func lifecycle() async throws {
        let server = try await LocalRedisServer.start(extraArguments: [
            "--appendonly", "yes", "--appendfsync", "always",
        ])
        let folder = server.directory
        let client = makeClient(for: server)
        try await client.send("SET", "durable", "yes")
        server.kill()
        try await server.restart()
        #expect(try await client.send("GET", "durable").string == "yes")
        await client.shutdown()
        server.stop()
        #expect(!FileManager.default.fileExists(atPath: folder.path))
    }

    @Test("two servers get two different ports")
    func distinctPorts() async throws {
        try await withRedisServer { first in
            try await withRedisServer { second in
                #expect(first.port != second.port)
            }
        }
    }
}
