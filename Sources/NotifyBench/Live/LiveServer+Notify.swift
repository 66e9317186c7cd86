import Foundation
import NotifyCore
import RedisClient

extension LiveServer {
    /// `notify api` (this binary) as a process of its own on a free port, with a Redis of its own, a made-up
    /// backend key and an HS256 secret for the streams' user tokens; with `plexer`, the same process also serves
    /// WebSockets (`plexer.enabled`) on a port of their own; `extra` adds settings (`NOTIFY_*`).
    static func startNotify(
        executable: String, plexer: Bool = false, extra: [String: String] = [:]
    ) async throws -> LiveServer {
        let redis = try await LocalRedisServer.start()
        do {
            let port = try FreePort.find()
            let plexerPort = plexer ? try FreePort.find() : nil
            let (apiKey, entry) = APIKeyVerifier.generate(name: "bench")
            let secret = Base64URL.random(byteCount: 32)
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("NOTIFY_") }
            environment["NOTIFY_REDIS_URL"] = redis.url.description
            environment["NOTIFY_HTTP_HOST"] = "127.0.0.1"
            environment["NOTIFY_HTTP_PORT"] = "\(port)"
            environment["NOTIFY_AUTH_API_KEYS"] = entry
            environment["NOTIFY_AUTH_JWT_HS256SECRET"] = secret
            environment["NOTIFY_LOG_LEVEL"] = "warning"
            if let plexerPort {
                environment["NOTIFY_PLEXER_ENABLED"] = "true"
                environment["NOTIFY_PLEXER_PORT"] = "\(plexerPort)"
            }
            environment.merge(extra) { _, new in new }
            let process = try ChildProcess(executable: executable, arguments: ["api"], environment: environment)
            return try await LiveServer(
                kind: .notify, port: port, webSocketPort: plexerPort, redis: redis, process: process, apiKey: apiKey,
                tokenSecret: secret
            ).ready(path: "/readyz")
        } catch {
            redis.stop()
            throw error
        }
    }
}
