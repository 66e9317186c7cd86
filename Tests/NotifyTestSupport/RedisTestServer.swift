import Foundation
import Logging
import NotifyCore
import RedisClient

/// Runs `body` with a real `redis-server` of its own on a free loopback port, stopped afterwards.
///
/// Every test gets its own server (start-up takes a few milliseconds), so tests can restart Redis, kill clients
/// or flush data without touching each other.
public func withRedisServer<T>(
    arguments: [String] = [],
    _ body: (LocalRedisServer) async throws -> T
) async throws -> T {
    let server = try await LocalRedisServer.start(extraArguments: arguments)
    defer { server.stop() }
    return try await body(server)
}

/// Runs `body` with a server and a client connected to it; the client is shut down afterwards.
public func withRedisClient<T>(
    arguments: [String] = [],
    configure: (inout RedisClientConfiguration) -> Void = { _ in },
    _ body: (RedisClient, LocalRedisServer) async throws -> T
) async throws -> T {
    try await withRedisServer(arguments: arguments) { server in
        try await makeClient(for: server, configure: configure).closing { try await body($0, server) }
    }
}

/// A client for `server` with test-friendly timeouts, adjusted by `configure`.
public func makeClient(
    for server: LocalRedisServer,
    configure: (inout RedisClientConfiguration) -> Void = { _ in }
) -> RedisClient {
    var configuration = RedisClientConfiguration(url: server.url, acquireTimeoutMs: 5_000, commandTimeoutMs: 5_000)
    configure(&configuration)
    return RedisClient(configuration: configuration, logger: testLogger("redis"))
}

/// A logger that drops everything below `error` (set NOTIFY_TEST_LOG_LEVEL for more), so test output stays readable.
public func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: "test.\(label)")
    logger.logLevel =
        ProcessInfo.processInfo.environment["NOTIFY_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .error
    return logger
}
