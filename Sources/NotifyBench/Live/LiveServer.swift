import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NotifyCore
import RedisClient

/// A server the live benchmark drives, with the Redis of its own that it stores messages in: `notify api`, or
/// nginx with nchan. Started by the benchmark, stopped (killed) when it ends.
final class LiveServer: Sendable {
    let kind: LiveTarget.Kind
    let port: Int
    /// Where WebSocket streams connect: Notify's Plexer port (nchan serves them on `port`).
    let webSocketPort: Int
    let redis: LocalRedisServer
    let process: ChildProcess
    /// Notify: the backend API key and the secret its user tokens are signed with.
    let apiKey: String
    let tokenSecret: String
    private let directory: URL?

    init(
        kind: LiveTarget.Kind, port: Int, webSocketPort: Int? = nil, redis: LocalRedisServer, process: ChildProcess,
        apiKey: String = "", tokenSecret: String = "", directory: URL? = nil
    ) {
        self.kind = kind
        self.port = port
        self.webSocketPort = webSocketPort ?? port
        self.redis = redis
        self.process = process
        self.apiKey = apiKey
        self.tokenSecret = tokenSecret
        self.directory = directory
    }

    var name: String { self.kind == .notify ? "notify" : "nchan" }

    /// The server's processes (nginx: its master and workers).
    var pids: [Int32] { [self.process.pid] + ProcessSample.children(of: self.process.pid) }

    var redisPIDs: [Int32] { self.redis.processID.map { [$0] } ?? [] }

    /// Bytes Redis uses for data (`used_memory`).
    func redisUsedMemory() async throws -> Int {
        let client = RedisClient(
            configuration: RedisClientConfiguration(url: self.redis.url, maxConnections: 1),
            logger: Logger(label: "bench"))
        let info = try await client.send("INFO", "memory").throwingIfError().string ?? ""
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("used_memory:") {
            return Int(line.dropFirst("used_memory:".count)) ?? 0
        }
        return 0
    }

    func stop() {
        self.process.kill(self.kind == .nchan ? SIGTERM : SIGKILL)
        self.redis.stop()
        if let directory = self.directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// This server once `path` answers; stopped if it never does.
    func ready(path: String) async throws -> LiveServer {
        do {
            try await Self.waitUntilAnswering(port: self.port, path: path, process: self.process)
        } catch {
            self.stop()
            throw error
        }
        return self
    }

    /// Polls `path` until it answers 2xx: neither server has a readiness signal we can await otherwise.
    private static func waitUntilAnswering(port: Int, path: String, process: ChildProcess) async throws {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = http.shutdown() }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard process.process.isRunning else {
                throw BenchError("the server exited with status \(process.process.terminationStatus)")
            }
            if let response = try? await http.execute(
                HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(1)),
                (200..<300).contains(response.status.code)
            {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError("the server on port \(port) did not answer \(path) within 30 s")
    }
}
